"""The data migrations (RunPython) of upstream, forwards and backwards, on the test database.

Each test migrates the app to the state just before the migration under test, creates rows with
the historical models of that state, migrates forwards and checks the transformation, migrates
back and checks that the data is as it was. The fixture brings the app back to its latest
migration afterwards so that other tests see the current schema.
"""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

APP = "upstream"
pytestmark = pytest.mark.django_db(transaction=True)


class Migrator:
    def migrate(self, name: str | None):
        """Migrate upstream to `name` (None: unapply everything); the historical apps there."""
        target = [(APP, name)]
        executor = MigrationExecutor(connection)
        executor.migrate(target)
        executor.loader.build_graph()
        return executor.loader.project_state(target).apps

    def columns(self, table: str) -> set[str]:
        with connection.cursor() as cursor:
            return {c.name for c in connection.introspection.get_table_description(cursor, table)}

    def leaf(self) -> str:
        executor = MigrationExecutor(connection)
        (leaf,) = executor.loader.graph.leaf_nodes(APP)
        return leaf[1]


@pytest.fixture
def migrator():
    migrator = Migrator()
    yield migrator
    migrator.migrate(migrator.leaf())


def make_customer(apps, name="Acme"):
    return apps.get_model(APP, "Customer").objects.create(name=name)


def make_invoice(apps, customer, number, **fields):
    fields.setdefault("issue_date", datetime.date(2025, 1, 1))
    fields.setdefault("due_date", datetime.date(2025, 1, 31))
    return apps.get_model(APP, "Invoice").objects.create(customer=customer, number=number, **fields)


def test_0014_customer_currency_copied_from_latest_invoice(migrator):
    apps = migrator.migrate("0013_alter_payment_amount")
    abroad, local, odd = (make_customer(apps, n) for n in ("Abroad Ltd", "Local", "Odd"))
    make_invoice(apps, abroad, "A-1", currency="USD", issue_date=datetime.date(2024, 1, 1))
    make_invoice(apps, abroad, "A-2", currency="GBP", issue_date=datetime.date(2024, 6, 1))
    make_invoice(apps, abroad, "A-3", currency="CHF", issue_date=datetime.date(2023, 12, 31))
    make_invoice(apps, odd, "O-1", currency="")

    apps = migrator.migrate("0014_customer_currency")
    currencies = dict(apps.get_model(APP, "Customer").objects.values_list("name", "currency"))
    assert currencies == {"Abroad Ltd": "GBP", "Local": "EUR", "Odd": ""}

    apps = migrator.migrate("0013_alter_payment_amount")
    assert "currency" not in migrator.columns("upstream_customer")
    Invoice = apps.get_model(APP, "Invoice")
    assert sorted(Invoice.objects.values_list("number", "currency")) == [
        ("A-1", "USD"),
        ("A-2", "GBP"),
        ("A-3", "CHF"),
        ("O-1", ""),
    ]
    assert apps.get_model(APP, "Customer").objects.count() == 3


def test_0019_void_becomes_cancelled_and_back(migrator):
    apps = migrator.migrate("0018_remove_invoice_paid_on")
    customer = make_customer(apps)
    before = {"I-1": "void", "I-2": "sent", "I-3": "cancelled", "I-4": "", "I-5": "paid"}
    for number, status in before.items():
        make_invoice(apps, customer, number, status=status)

    apps = migrator.migrate("0019_invoice_status_cancelled")
    after = dict(apps.get_model(APP, "Invoice").objects.values_list("number", "status"))
    assert after == {"I-1": "cancelled", "I-2": "sent", "I-3": "void", "I-4": "", "I-5": "paid"}

    apps = migrator.migrate("0018_remove_invoice_paid_on")
    assert dict(apps.get_model(APP, "Invoice").objects.values_list("number", "status")) == before


def test_0022_tag_slugs(migrator):
    apps = migrator.migrate("0021_payment_paid_on_idx")
    Tag = apps.get_model(APP, "Tag")
    names = ["Fixed Price", "Rétainer ﬃ", "", "日本", "é" * 50, "ﬃ" * 50]
    for name in names:
        Tag.objects.create(name=name)

    apps = migrator.migrate("0022_tag_slug")
    slugs = dict(apps.get_model(APP, "Tag").objects.values_list("name", "slug"))
    assert slugs == {
        "Fixed Price": "fixed-price",
        "Rétainer ﬃ": "retainer-ffi",
        "": "",
        "日本": "",
        "é" * 50: "e" * 50,
        "ﬃ" * 50: ("ffi" * 17)[:50],  # slugify makes 150 characters of it: cut to 50
    }

    apps = migrator.migrate("0021_payment_paid_on_idx")
    assert "slug" not in migrator.columns("upstream_tag")
    assert sorted(apps.get_model(APP, "Tag").objects.values_list("name", flat=True)) == sorted(
        names
    )


def test_0024_sent_at_backfilled_for_sent_and_paid(migrator):
    apps = migrator.migrate("0023_alter_invoice_due_date")
    customer = make_customer(apps)
    make_invoice(apps, customer, "S", status="sent", issue_date=datetime.date(2999, 12, 31))
    make_invoice(apps, customer, "P", status="paid", issue_date=datetime.date(1900, 1, 1))
    make_invoice(apps, customer, "D", status="draft")
    make_invoice(apps, customer, "C", status="cancelled", due_date=None)

    apps = migrator.migrate("0024_invoice_sent_at")
    utc = datetime.UTC
    sent_at = dict(apps.get_model(APP, "Invoice").objects.values_list("number", "sent_at"))
    assert sent_at == {
        "S": datetime.datetime(2999, 12, 31, 9, 0, tzinfo=utc),
        "P": datetime.datetime(1900, 1, 1, 9, 0, tzinfo=utc),
        "D": None,
        "C": None,
    }

    apps = migrator.migrate("0023_alter_invoice_due_date")
    assert "sent_at" not in migrator.columns("upstream_invoice")
    statuses = dict(apps.get_model(APP, "Invoice").objects.values_list("number", "status"))
    assert statuses == {"S": "sent", "P": "paid", "D": "draft", "C": "cancelled"}


# The rollback guards: RunPython(noop, reverse_code=...) that make a widening AlterField
# reversible once newer data exists. Rows that fit the old schema must come back untouched.


def test_0011_reverse_truncates_only_long_descriptions(migrator):
    apps = migrator.migrate("0011_alter_invoiceline_description")
    invoice = make_invoice(apps, make_customer(apps), "L-1")
    InvoiceLine = apps.get_model(APP, "InvoiceLine")
    long_line = InvoiceLine.objects.create(invoice=invoice, description="ü" * 500, unit_price=1)
    short_line = InvoiceLine.objects.create(invoice=invoice, description="ß" * 200, unit_price=1)

    apps = migrator.migrate("0010_invoice_unique_number")
    descriptions = dict(apps.get_model(APP, "InvoiceLine").objects.values_list("pk", "description"))
    assert descriptions == {long_line.pk: "ü" * 200, short_line.pk: "ß" * 200}


def test_0013_reverse_caps_amounts_to_old_precision(migrator):
    apps = migrator.migrate("0013_alter_payment_amount")
    invoice = make_invoice(apps, make_customer(apps), "P-1")
    Payment = apps.get_model(APP, "Payment")
    amounts = ["999999999999.99", "-999999999999.99", "99999999.99", "-12.50", "0"]
    pks = [Payment.objects.create(invoice=invoice, amount=Decimal(a)).pk for a in amounts]

    apps = migrator.migrate("0012_invoiceline_discount_percent")
    got = dict(apps.get_model(APP, "Payment").objects.values_list("pk", "amount"))
    expected = ["99999999.99", "-99999999.99", "99999999.99", "-12.50", "0.00"]
    assert [got[pk] for pk in pks] == [Decimal(e) for e in expected]


def test_0020_reverse_caps_rates_to_old_precision(migrator):
    apps = migrator.migrate("0020_alter_taxrate_rate")
    TaxRate = apps.get_model(APP, "TaxRate")
    huge = TaxRate.objects.create(name="huge", rate=Decimal("999.999"))
    negative = TaxRate.objects.create(name="negative", rate=Decimal("-999.995"))
    standard = TaxRate.objects.create(name="standard", rate=Decimal("21.000"))

    apps = migrator.migrate("0019_invoice_status_cancelled")
    rates = dict(apps.get_model(APP, "TaxRate").objects.values_list("pk", "rate"))
    assert rates == {
        huge.pk: Decimal("999.99"),
        negative.pk: Decimal("-999.99"),
        standard.pk: Decimal("21.00"),
    }


def test_0023_reverse_gives_invoices_without_due_date_their_issue_date(migrator):
    apps = migrator.migrate("0023_alter_invoice_due_date")
    customer = make_customer(apps)
    on_receipt = make_invoice(
        apps, customer, "R-1", due_date=None, issue_date=datetime.date(2999, 12, 31)
    )
    with_due = make_invoice(apps, customer, "R-2", due_date=datetime.date(2025, 2, 15))

    apps = migrator.migrate("0022_tag_slug")
    due = dict(apps.get_model(APP, "Invoice").objects.values_list("pk", "due_date"))
    assert due == {
        on_receipt.pk: datetime.date(2999, 12, 31),
        with_due.pk: datetime.date(2025, 2, 15),
    }
