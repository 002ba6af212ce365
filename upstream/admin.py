from django.contrib import admin
from django.http import HttpResponse

from .models import Customer, Invoice, InvoiceLine, Payment, Project, Tag, TaxRate
from .pdf import invoice_queryset, invoices_zip, render_invoice_pdf
from .views import pdf_response


@admin.register(TaxRate)
class TaxRateAdmin(admin.ModelAdmin):
    list_display = ["name", "rate"]
    search_fields = ["name"]


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]


class ProjectInline(admin.TabularInline):
    model = Project
    extra = 0
    fields = ["name", "hourly_rate", "is_active"]


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "vat_number", "currency", "created_at"]
    search_fields = ["name", "email", "vat_number"]
    list_filter = ["currency"]
    inlines = [ProjectInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "customer", "hourly_rate", "is_active"]
    list_filter = ["is_active", "tags"]
    search_fields = ["name", "customer__name"]
    autocomplete_fields = ["customer"]
    filter_horizontal = ["tags"]


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    extra = 1
    fields = ["position", "description", "quantity", "unit_price", "discount_percent"]


class PaymentInline(admin.TabularInline):
    model = Payment
    extra = 0
    fields = ["paid_on", "amount", "method", "reference"]


@admin.action(description="Download PDF")
def download_pdf(modeladmin, request, queryset) -> HttpResponse:
    """One invoice: its PDF. Several: a zip with one PDF per invoice."""
    invoices = list(invoice_queryset().filter(pk__in=queryset.values("pk")).order_by("number"))
    if len(invoices) == 1:
        invoice = invoices[0]
        return pdf_response(render_invoice_pdf(invoice), invoice.pdf_filename, inline=False)
    response = HttpResponse(invoices_zip(invoices), content_type="application/zip")
    response["Content-Disposition"] = 'attachment; filename="invoices.zip"'
    return response


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    list_display = ["number", "customer", "status", "issue_date", "due_date", "currency", "total"]
    list_filter = ["status", "currency", "issue_date"]
    search_fields = ["number", "customer__name"]
    date_hierarchy = "issue_date"
    autocomplete_fields = ["customer"]
    list_select_related = ["customer", "tax_rate"]
    readonly_fields = ["sent_at", "created_at", "updated_at"]
    inlines = [InvoiceLineInline, PaymentInline]
    actions = [download_pdf]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("lines")

    @admin.display(description="Total")
    def total(self, invoice: Invoice):
        return invoice.total


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["invoice", "paid_on", "amount", "method", "reference"]
    list_filter = ["method", "paid_on"]
    search_fields = ["invoice__number", "reference"]
    list_select_related = ["invoice"]


@admin.register(InvoiceLine)
class InvoiceLineAdmin(admin.ModelAdmin):
    list_display = ["invoice", "position", "description", "quantity", "unit_price"]
    search_fields = ["invoice__number", "description"]
    list_select_related = ["invoice"]
