import datetime
from decimal import Decimal

import pytest

from upstream.models import Customer, Invoice, InvoiceLine, Payment, Project, Tag, TaxRate


@pytest.fixture
def customer(db):
    return Customer.objects.create(
        name="Acme Bäckerei GmbH",
        email="billing@acme.example",
        address="Hauptstraße 1\n10115 Berlin",
        vat_number="DE123456789",
        currency="EUR",
    )


@pytest.fixture
def tax_rate(db):
    return TaxRate.objects.create(name="Standard", rate=Decimal("21.000"))


@pytest.fixture
def project(customer):
    project = Project.objects.create(customer=customer, name="Website relaunch", hourly_rate=95)
    project.tags.add(Tag.objects.create(name="fixed-price", slug="fixed-price"))
    return project


@pytest.fixture
def invoice(customer, project, tax_rate):
    """Two lines (one discounted), 21 % tax, one partial payment.

    Subtotal 1000.00 + 225.00 = 1225.00; tax 257.25; total 1482.25; paid 500.00.
    """
    invoice = Invoice.objects.create(
        number="INV-2025-0042",
        customer=customer,
        project=project,
        status=Invoice.Status.SENT,
        currency="EUR",
        tax_rate=tax_rate,
        issue_date=datetime.date(2025, 3, 1),
        due_date=datetime.date(2025, 3, 31),
        notes="Thank you for your business.",
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        position=1,
        description="Design workshop",
        quantity=Decimal("8"),
        unit_price=Decimal("125.00"),
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        position=2,
        description="Hosting (yearly)",
        quantity=Decimal("1"),
        unit_price=Decimal("250.00"),
        discount_percent=Decimal("10"),
    )
    Payment.objects.create(
        invoice=invoice,
        amount=Decimal("500.00"),
        paid_on=datetime.date(2025, 3, 10),
        reference="BANK-REF-1",
    )
    return invoice
