from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.views.generic import DetailView, ListView

from .models import Invoice
from .pdf import invoice_queryset, render_invoice_pdf


class InvoiceListView(ListView):
    model = Invoice
    paginate_by = 50
    context_object_name = "invoices"

    def get_queryset(self):
        queryset = Invoice.objects.select_related("customer").prefetch_related("lines")
        queryset = queryset.select_related("tax_rate")
        status = self.request.GET.get("status")
        if status in Invoice.Status.values:
            queryset = queryset.filter(status=status)
        return queryset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["statuses"] = Invoice.Status.choices
        context["current_status"] = self.request.GET.get("status", "")
        return context


class InvoiceDetailView(DetailView):
    context_object_name = "invoice"

    def get_queryset(self):
        return invoice_queryset()


def pdf_response(pdf: bytes, filename: str, *, inline: bool = True) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    disposition = "inline" if inline else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    return response


def invoice_pdf(request, pk):
    invoice = get_object_or_404(invoice_queryset(), pk=pk)
    return pdf_response(render_invoice_pdf(invoice), invoice.pdf_filename)
