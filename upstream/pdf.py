"""Invoice PDFs, rendered by WeasyPrint from the Django template ``upstream/invoice_pdf.html``.

WeasyPrint (and its Pango/cairo stack) takes a noticeable time to import, and every
``manage.py`` command would pay for it if it were imported at module level anywhere Django
loads (models, admin, views, urls). It is therefore imported inside ``render_invoice_pdf`` only.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable

from django.conf import settings
from django.template.loader import render_to_string

from .models import Invoice

TEMPLATE_NAME = "upstream/invoice_pdf.html"


def invoice_queryset():
    return Invoice.objects.select_related("customer", "project", "tax_rate").prefetch_related(
        "lines", "payments"
    )


def render_invoice_html(invoice: Invoice) -> str:
    return render_to_string(
        TEMPLATE_NAME,
        {
            "invoice": invoice,
            "lines": list(invoice.lines.all()),
            "issuer_name": settings.INVOICE_ISSUER_NAME,
            "issuer_address": settings.INVOICE_ISSUER_ADDRESS,
        },
    )


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """The invoice as PDF bytes."""
    from weasyprint import HTML  # lazy on purpose: see the module docstring

    html = render_invoice_html(invoice)
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def invoices_zip(invoices: Iterable[Invoice]) -> bytes:
    """A zip archive holding one PDF per invoice."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        used: set[str] = set()
        for invoice in invoices:
            name = invoice.pdf_filename
            if name in used:  # numbers are unique, but sanitising can make names collide
                name = name.removesuffix(".pdf") + f"-{invoice.pk}.pdf"
            used.add(name)
            archive.writestr(name, render_invoice_pdf(invoice))
    return buffer.getvalue()
