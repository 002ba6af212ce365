import pytest

from upstream.models import Invoice


def test_invoice_list(client, invoice):
    response = client.get("/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "INV-2025-0042" in body
    assert "Acme Bäckerei GmbH" in body
    assert "1482.25 EUR" in body
    assert f'href="/invoice/{invoice.pk}/pdf/"' in body


def test_invoice_list_filters_by_status(client, invoice):
    Invoice.objects.create(number="INV-DRAFT-1", customer=invoice.customer)
    body = client.get("/?status=draft").content.decode()
    assert "INV-DRAFT-1" in body
    assert "INV-2025-0042" not in body
    body = client.get("/?status=bogus").content.decode()  # unknown status: no filter
    assert "INV-DRAFT-1" in body and "INV-2025-0042" in body


def test_invoice_list_empty(client, db):
    assert "No invoices yet." in client.get("/").content.decode()


def test_invoice_detail(client, invoice):
    response = client.get(f"/invoice/{invoice.pk}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Invoice INV-2025-0042" in body
    assert "Hosting (yearly)" in body
    assert "257.25" in body  # tax
    assert "982.25 EUR" in body  # balance due


def test_invoice_pdf_view(client, invoice):
    response = client.get(f"/invoice/{invoice.pk}/pdf/")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'inline; filename="invoice-INV-2025-0042.pdf"'
    assert response.content.startswith(b"%PDF-")


@pytest.mark.parametrize("url", ["/invoice/999999/", "/invoice/999999/pdf/"])
def test_missing_invoice_is_404(client, db, url):
    assert client.get(url).status_code == 404
