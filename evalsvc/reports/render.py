"""A report document → its HTML (a Django template) → its PDF (WeasyPrint).

The HTML download and the PDF come from the same template, so they show the
same content; the JSON download is the document itself. The report's id is
embedded in the PDF twice: in the document information (custom metadata,
readable with ``pdfinfo -custom``) and in the file identifier in the trailer,
which stays readable as plain text even where the rest of the file is
compressed: :func:`claimed_report_id` finds it in a modified copy.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.template.loader import render_to_string

TEMPLATE = "reports/report.html"
_ID_PREFIX = b"evalsvc-report:"
_ID_PATTERN = re.compile(re.escape(_ID_PREFIX) + rb"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def render_html(document: dict[str, Any]) -> str:
    return render_to_string(TEMPLATE, {"doc": document})


def render_pdf(html: str, *, report_id: uuid.UUID | str) -> bytes:
    # Imported here: WeasyPrint loads Pango and fonts, which only report rendering needs.
    from weasyprint import HTML

    return HTML(string=html).write_pdf(custom_metadata=True, pdf_identifier=_ID_PREFIX + str(report_id).encode("ascii"))


def claimed_report_id(content: bytes) -> str | None:
    """The report id a PDF says it is, if it says so; no proof of anything by itself."""
    match = _ID_PATTERN.search(content)
    return match.group(1).decode("ascii") if match else None
