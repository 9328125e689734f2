"""A one-page PDF written by hand: text in the standard fonts, nothing embedded.

Enough for an invoice a browser opens and a test can check (`%PDF-1.4` ... `%%EOF`, a valid
cross-reference table). Text outside Windows-1252 (the fonts' WinAnsiEncoding) is replaced by "?".
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PdfText", "one_page_pdf"]

A4 = (595, 842)
_FONTS = {"regular": "Helvetica", "bold": "Helvetica-Bold", "mono": "Courier"}
_NAMES = {"regular": "F1", "bold": "F2", "mono": "F3"}


@dataclass(frozen=True, slots=True)
class PdfText:
    """One line of text at (x, y) points from the bottom left; `right`: x is its right edge
    (only for the monospaced font, whose width is known: 0.6 of the size per character)."""

    text: str
    x: float
    y: float
    size: float = 10
    font: str = "regular"
    right: bool = False


def _literal(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _content(lines: list[PdfText]) -> bytes:
    out = []
    for line in lines:
        x = line.x - len(line.text) * line.size * 0.6 if line.right else line.x
        out.append(
            b"BT /%s %.1f Tf %.1f %.1f Td %s Tj ET"
            % (_NAMES[line.font].encode(), line.size, x, line.y, _literal(line.text))
        )
    return b"\n".join(out)


def one_page_pdf(lines: list[PdfText], *, title: str) -> bytes:
    stream = _content(lines)
    fonts = b" ".join(b"/%s %d 0 R" % (_NAMES[k].encode(), 5 + i) for i, k in enumerate(_FONTS))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << %s >> >>"
        b" /Contents 4 0 R >>" % (A4[0], A4[1], fonts),
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        *(
            b"<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>"
            % name.encode()
            for name in _FONTS.values()
        ),
        b"<< /Title %s /Producer (reapi Stripe simulator) >>" % _literal(title),
    ]
    body = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, obj in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n%s\nendobj\n" % (number, obj)
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        len(objects),
        xref,
    )
    return bytes(body)
