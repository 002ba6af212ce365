"""Query-count budgets of the invoice views, asserted exactly.

A budget fails both ways: one query more is a regression (typically an N+1 from a template
touching a relation that is not prefetched); one query fewer means the budget should be
tightened here, so the next regression is caught. Each view is measured with one invoice and
with several: the count must not grow with the number of invoices or lines.

Run in the `performance` job of .github/workflows/ci.yml on PostgreSQL 15 (and with the unit
tests on SQLite: the ORM issues the same queries on both).
"""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest

from upstream.models import Invoice, InvoiceLine, Payment

# Queries per request, whatever the number of invoices, lines and payments.
LIST_QUERIES = 3  # COUNT for the paginator, invoices JOIN customer/tax rate, prefetch lines
EMPTY_LIST_QUERIES = 1  # COUNT only: an empty page is not fetched
DETAIL_QUERIES = 3  # invoice JOIN customer/project/tax rate, prefetch lines, prefetch payments
PDF_QUERIES = 3  # the same queryset as the detail page


def add_invoices(template: Invoice, count: int) -> list[Invoice]:
    """`count` more invoices like `template`, each with three lines and two payments."""
    invoices = []
    for index in range(count):
        invoice = Invoice.objects.create(
            number=f"INV-PERF-{index:03d}", customer=template.customer, project=template.project,
            status=Invoice.Status.SENT, currency="EUR", tax_rate=template.tax_rate,
            issue_date=datetime.date(2025, 4, 1), due_date=datetime.date(2025, 5, 1),
        )
        for position in range(3):
            InvoiceLine.objects.create(invoice=invoice, position=position, description=f"Line {position}",
                                       quantity=Decimal("2"), unit_price=Decimal("10.00"))
        for amount in ("5.00", "7.50"):
            Payment.objects.create(invoice=invoice, amount=Decimal(amount),
                                   paid_on=datetime.date(2025, 4, 10), reference=f"P-{index}-{amount}")
        invoices.append(invoice)
    return invoices


@pytest.mark.parametrize("extra_invoices", [0, 5], ids=["one-invoice", "six-invoices"])
def test_invoice_list_query_budget(client, invoice, django_assert_num_queries, extra_invoices):
    add_invoices(invoice, extra_invoices)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/")
    assert response.status_code == 200
    assert response.content.decode().count("/pdf/") == 1 + extra_invoices


def test_invoice_list_filtered_query_budget(client, invoice, django_assert_num_queries):
    add_invoices(invoice, 3)
    with django_assert_num_queries(LIST_QUERIES):
        response = client.get("/?status=sent")
    assert response.status_code == 200


def test_empty_invoice_list_query_budget(client, db, django_assert_num_queries):
    with django_assert_num_queries(EMPTY_LIST_QUERIES):
        response = client.get("/")
    assert "No invoices yet." in response.content.decode()


@pytest.mark.parametrize("extra_invoices", [0, 5], ids=["one-invoice", "six-invoices"])
def test_invoice_detail_query_budget(client, invoice, django_assert_num_queries, extra_invoices):
    others = add_invoices(invoice, extra_invoices)
    target = others[-1] if others else invoice
    with django_assert_num_queries(DETAIL_QUERIES):
        response = client.get(f"/invoice/{target.pk}/")
    assert response.status_code == 200
    assert target.number in response.content.decode()


@pytest.mark.parametrize("extra_invoices", [0, 5], ids=["one-invoice", "six-invoices"])
def test_invoice_pdf_query_budget(client, invoice, django_assert_num_queries, extra_invoices):
    others = add_invoices(invoice, extra_invoices)
    target = others[-1] if others else invoice
    with django_assert_num_queries(PDF_QUERIES):
        response = client.get(f"/invoice/{target.pk}/pdf/")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")


def test_missing_invoice_costs_one_query(client, db, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert client.get("/invoice/999999/").status_code == 404
