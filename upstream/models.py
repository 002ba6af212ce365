"""Invoicing for a small agency: customers, projects, invoices with lines and payments.

Money is kept in ``Decimal``; an invoice's totals are computed from its lines and its tax rate
(nothing is cached in the database, so a total can never disagree with its lines).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

CENT = Decimal("0.01")


def to_cents(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class TaxRate(models.Model):
    name = models.CharField(max_length=50)
    rate = models.DecimalField(
        max_digits=6, decimal_places=3, help_text="Percentage, e.g. 21.000 for 21 %."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.rate.normalize()} %)"


class Tag(models.Model):
    name = models.CharField(max_length=50, unique=True)
    slug = models.SlugField(blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Customer(models.Model):
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True)
    address = models.TextField(blank=True)
    vat_number = models.CharField("VAT number", max_length=32, blank=True, default="")
    currency = models.CharField(
        max_length=3, default="EUR", help_text="ISO 4217 code used for new invoices."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="projects")
    name = models.CharField(max_length=200)
    hourly_rate = models.DecimalField(max_digits=8, decimal_places=2, default=0)
    is_active = models.BooleanField(default=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="projects")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Invoice(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        PAID = "paid", "Paid"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=20)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="invoices")
    project = models.ForeignKey(
        Project, on_delete=models.SET_NULL, null=True, blank=True, related_name="invoices"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    currency = models.CharField(max_length=3, default="EUR", help_text="ISO 4217 code.")
    tax_rate = models.ForeignKey(TaxRate, on_delete=models.PROTECT, null=True, blank=True)
    issue_date = models.DateField(default=timezone.localdate)
    due_date = models.DateField(null=True, blank=True, help_text="Empty: payable on receipt.")
    sent_at = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-issue_date", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="unique_invoice_number"),
        ]
        indexes = [
            models.Index(fields=["status", "due_date"], name="invoice_status_due_idx"),
        ]

    def __str__(self) -> str:
        return self.number

    def get_absolute_url(self) -> str:
        return reverse("upstream:invoice-detail", args=[self.pk])

    def get_pdf_url(self) -> str:
        return reverse("upstream:invoice-pdf", args=[self.pk])

    @property
    def pdf_filename(self) -> str:
        safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in self.number)
        return f"invoice-{safe or self.pk}.pdf"

    # Totals ------------------------------------------------------------------------------------

    @property
    def subtotal(self) -> Decimal:
        return to_cents(sum((line.amount for line in self.lines.all()), Decimal(0)))

    @property
    def tax_percent(self) -> Decimal:
        return self.tax_rate.rate if self.tax_rate_id else Decimal(0)

    @property
    def tax_amount(self) -> Decimal:
        return to_cents(self.subtotal * self.tax_percent / 100)

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax_amount

    @property
    def amount_paid(self) -> Decimal:
        return to_cents(sum((p.amount for p in self.payments.all()), Decimal(0)))

    @property
    def balance_due(self) -> Decimal:
        return self.total - self.amount_paid

    @property
    def is_overdue(self) -> bool:
        return (
            self.status == self.Status.SENT
            and self.due_date is not None
            and self.due_date < timezone.localdate()
        )


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=500)
    quantity = models.DecimalField(max_digits=8, decimal_places=2, default=1)
    unit_price = models.DecimalField(max_digits=10, decimal_places=2)
    discount_percent = models.DecimalField(max_digits=5, decimal_places=2, default=0)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(discount_percent__gte=0) & Q(discount_percent__lte=100),
                name="invoiceline_discount_percent_range",
            ),
        ]

    def __str__(self) -> str:
        return self.description

    @property
    def amount(self) -> Decimal:
        gross = self.quantity * self.unit_price
        return to_cents(gross * (100 - self.discount_percent) / 100)


class Payment(models.Model):
    class Method(models.TextChoices):
        BANK_TRANSFER = "bank_transfer", "Bank transfer"
        CARD = "card", "Card"
        CASH = "cash", "Cash"

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    amount = models.DecimalField(max_digits=14, decimal_places=2)
    paid_on = models.DateField(default=timezone.localdate)
    method = models.CharField(max_length=20, choices=Method.choices, default=Method.BANK_TRANSFER)
    reference = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        ordering = ["-paid_on", "-id"]
        indexes = [models.Index(fields=["paid_on"], name="payment_paid_on_idx")]

    def __str__(self) -> str:
        return f"{self.amount} on {self.paid_on}"
