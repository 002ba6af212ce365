import io
import zipfile

import pytest
from pypdf import PdfReader

from upstream.models import Invoice

CHANGELISTS = ["customer", "project", "invoice", "invoiceline", "payment", "taxrate", "tag"]


@pytest.mark.parametrize("model", CHANGELISTS)
def test_changelists(admin_client, invoice, model):
    response = admin_client.get(f"/admin/upstream/{model}/")
    assert response.status_code == 200


def test_invoice_changelist_shows_total(admin_client, invoice):
    body = admin_client.get("/admin/upstream/invoice/").content.decode()
    assert "INV-2025-0042" in body
    assert "1482.25" in body
    assert "Download PDF" in body


def test_invoice_change_page_has_line_and_payment_inlines(admin_client, invoice):
    response = admin_client.get(f"/admin/upstream/invoice/{invoice.pk}/change/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Design workshop" in body
    assert "BANK-REF-1" in body


def run_action(admin_client, pks):
    return admin_client.post(
        "/admin/upstream/invoice/",
        {"action": "download_pdf", "_selected_action": [str(pk) for pk in pks]},
    )


def test_download_pdf_action_single_invoice(admin_client, invoice):
    response = run_action(admin_client, [invoice.pk])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == 'attachment; filename="invoice-INV-2025-0042.pdf"'
    reader = PdfReader(io.BytesIO(response.content))
    assert "INV-2025-0042" in reader.pages[0].extract_text()


def test_download_pdf_action_several_invoices_gives_zip(admin_client, invoice):
    other = Invoice.objects.create(number="INV-2025-0050", customer=invoice.customer)
    response = run_action(admin_client, [invoice.pk, other.pk])
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert names == ["invoice-INV-2025-0042.pdf", "invoice-INV-2025-0050.pdf"]
        assert all(archive.read(name).startswith(b"%PDF-") for name in names)


def test_admin_requires_login(client, db):
    response = client.get("/admin/upstream/invoice/")
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
