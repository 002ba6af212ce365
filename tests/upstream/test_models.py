import datetime
from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from upstream.models import Customer, Invoice, InvoiceLine, Payment, Project, Tag, TaxRate


def test_line_amount_applies_discount_and_rounds_to_cents(invoice):
    line = InvoiceLine(
        quantity=Decimal("3"), unit_price=Decimal("33.33"), discount_percent=Decimal("12.5")
    )
    assert line.amount == Decimal("87.49")  # 99.99 * 0.875 = 87.49125
    amounts = [line.amount for line in invoice.lines.all()]
    assert amounts == [Decimal("1000.00"), Decimal("225.00")]


def test_invoice_totals(invoice):
    assert invoice.subtotal == Decimal("1225.00")
    assert invoice.tax_percent == Decimal("21.000")
    assert invoice.tax_amount == Decimal("257.25")
    assert invoice.total == Decimal("1482.25")
    assert invoice.amount_paid == Decimal("500.00")
    assert invoice.balance_due == Decimal("982.25")


def test_invoice_without_tax_rate_or_lines(customer):
    invoice = Invoice.objects.create(number="INV-0", customer=customer, due_date=None)
    assert invoice.subtotal == Decimal("0.00")
    assert invoice.tax_amount == Decimal("0.00")
    assert invoice.total == Decimal("0.00")
    assert invoice.status == Invoice.Status.DRAFT
    assert invoice.currency == "EUR"


def test_lines_are_ordered_by_position(invoice):
    InvoiceLine.objects.create(invoice=invoice, position=0, description="First", unit_price=1)
    assert [line.description for line in invoice.lines.all()] == [
        "First",
        "Design workshop",
        "Hosting (yearly)",
    ]


def test_invoice_number_is_unique(invoice):
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.create(number=invoice.number, customer=invoice.customer)


@pytest.mark.parametrize("discount", [Decimal("-0.01"), Decimal("100.01")])
def test_discount_percent_check_constraint(invoice, discount):
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(
            invoice=invoice, description="Bad", unit_price=1, discount_percent=discount
        )


def test_discount_percent_bounds_are_allowed(invoice):
    for discount in (Decimal("0"), Decimal("100")):
        line = InvoiceLine.objects.create(
            invoice=invoice, description="Edge", unit_price=10, discount_percent=discount
        )
        assert line.amount == (Decimal("10.00") if discount == 0 else Decimal("0.00"))


def test_line_position_cannot_be_negative(invoice):
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.create(invoice=invoice, position=-1, description="x", unit_price=1)


def test_tag_name_is_unique(db):
    Tag.objects.create(name="retainer")
    with pytest.raises(IntegrityError), transaction.atomic():
        Tag.objects.create(name="retainer")


def test_customer_with_invoices_is_protected(invoice):
    with pytest.raises(ProtectedError):
        invoice.customer.delete()


def test_deleting_invoice_cascades_to_lines_and_payments(invoice):
    invoice.delete()
    assert InvoiceLine.objects.count() == 0
    assert Payment.objects.count() == 0


def test_deleting_project_keeps_invoice(invoice):
    invoice.project.delete()
    invoice.refresh_from_db()
    assert invoice.project is None


def test_project_tags_many_to_many(project):
    retainer = Tag.objects.create(name="retainer")
    project.tags.add(retainer)
    assert sorted(project.tags.values_list("name", flat=True)) == ["fixed-price", "retainer"]
    assert list(retainer.projects.all()) == [project]


def test_str_and_urls(invoice, tax_rate):
    assert str(invoice) == "INV-2025-0042"
    assert str(tax_rate) == "Standard (21 %)"
    assert str(Customer(name="X")) == "X"
    assert str(Project(name="P")) == "P"
    assert invoice.get_absolute_url() == f"/invoice/{invoice.pk}/"
    assert invoice.get_pdf_url() == f"/invoice/{invoice.pk}/pdf/"


def test_pdf_filename_is_sanitised(customer):
    assert Invoice(number="INV/2025 7", customer=customer).pdf_filename == "invoice-INV-2025-7.pdf"


def test_is_overdue(invoice):
    assert invoice.is_overdue  # due 2025-03-31, sent, unpaid
    invoice.due_date = None
    assert not invoice.is_overdue
    invoice.due_date = datetime.date(2999, 12, 31)
    assert not invoice.is_overdue


def test_large_amounts_fit(invoice):
    payment = Payment.objects.create(invoice=invoice, amount=Decimal("999999999999.99"))
    payment.refresh_from_db()
    assert payment.amount == Decimal("999999999999.99")
    rate = TaxRate.objects.create(name="Odd", rate=Decimal("5.125"))
    rate.refresh_from_db()
    assert rate.rate == Decimal("5.125")
