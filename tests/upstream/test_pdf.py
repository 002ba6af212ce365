import io
import os
import subprocess
import sys
import zipfile
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from upstream.models import InvoiceLine
from upstream.pdf import invoices_zip, render_invoice_pdf

REPO_ROOT = Path(__file__).resolve().parents[2]


def pdf_text(data: bytes) -> tuple[int, str]:
    reader = PdfReader(io.BytesIO(data))
    return len(reader.pages), "\n".join(page.extract_text() for page in reader.pages)


def test_invoice_pdf_is_a_real_pdf(invoice):
    data = render_invoice_pdf(invoice)
    assert data.startswith(b"%PDF-")
    assert data.rstrip().endswith(b"%%EOF")
    pages, text = pdf_text(data)
    assert pages == 1
    assert "INV-2025-0042" in text
    assert "Acme Bäckerei GmbH" in text
    assert "1482.25" in text  # total
    assert "982.25" in text  # balance due
    assert "Design workshop" in text


def test_long_invoice_spans_several_pages(invoice):
    InvoiceLine.objects.bulk_create(
        InvoiceLine(
            invoice=invoice,
            position=10 + i,
            description=f"Support ticket #{i}",
            unit_price=Decimal("10.00"),
        )
        for i in range(120)
    )
    pages, text = pdf_text(render_invoice_pdf(invoice))
    assert pages >= 3
    assert "Support ticket #119" in text
    assert f"Page {pages} of {pages}" in text


def test_zip_holds_one_pdf_per_invoice(invoice):
    other = type(invoice).objects.create(number="INV-2025-0043", customer=invoice.customer)
    with zipfile.ZipFile(io.BytesIO(invoices_zip([invoice, other]))) as archive:
        assert sorted(archive.namelist()) == [
            "invoice-INV-2025-0042.pdf",
            "invoice-INV-2025-0043.pdf",
        ]
        _, text = pdf_text(archive.read("invoice-INV-2025-0043.pdf"))
        assert "INV-2025-0043" in text


@pytest.mark.parametrize(
    "code",
    [
        "import django; django.setup(); "
        "import upstream.models, upstream.admin, upstream.views, upstream.urls, hello_world.urls",
        "from django.core.management import call_command; import django; django.setup(); "
        "call_command('check')",
    ],
    ids=["imports", "manage-check"],
)
def test_weasyprint_is_not_imported_at_start_up(code):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "hello_world.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code + "; import sys; print('weasyprint' in sys.modules)"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
