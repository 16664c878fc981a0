"""PDF layouts of the documents (fpdf2, A4, a CJK font embedded as a subset) and their PAdES signature.

Every document has a title, a document number, labelled lines, paragraphs, the issuing department
and date at the foot, and a line saying it is electronically signed. ``sign`` adds a PAdES
signature (pyHanko) with the department's key (``engine.certificates.documents.keys``); ``verify`` checks one
against the CA of those keys.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from fpdf import FPDF

from engine.certificates.documents.keys import DepartmentKey, DocumentKeys
from engine.errors import DependencyDown

# Debian's fonts-noto-cjk (installed by `make browser`); GOVFLOW_DOC_FONT may name another TTF/OTF/TTC
FONT_CANDIDATES = (("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
                   ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
                   ("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf", 0),
                   ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0))
BOLD_CANDIDATES = (("/usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc", 2),
                   ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2))


class FontMissing(DependencyDown):
    code = "document_font_missing"
    default_message = "文书字体未安装，暂不能出具文书"


@lru_cache(maxsize=1)
def font_files() -> tuple[tuple[str, int], tuple[str, int]]:
    """(regular, bold) font file and collection index; bold falls back to regular."""
    configured = os.environ.get("GOVFLOW_DOC_FONT", "")
    regular = next(((p, i) for p, i in ((configured, 0),) + FONT_CANDIDATES if p and Path(p).exists()), None)
    if regular is None:
        raise FontMissing("未找到中文字体（请安装 fonts-noto-cjk 或设置 GOVFLOW_DOC_FONT）")
    bold = next(((p, i) for p, i in BOLD_CANDIDATES if Path(p).exists()), regular)
    return regular, bold


@dataclass
class Document:
    """What a document says; ``render`` lays it out."""

    title: str
    number: str
    issuer: str
    issued_on: str  # 2026年12月6日
    lines: list[tuple[str, str]] = field(default_factory=list)  # label, value
    paragraphs: list[str] = field(default_factory=list)
    items: list[str] = field(default_factory=list)  # a numbered list (补正 items, legal basis)
    items_title: str = ""
    addressee: str = ""
    qr_png: bytes | None = None
    qr_caption: str = ""
    subtitle: str = ""
    keywords: dict[str, Any] = field(default_factory=dict)


class _Pdf(FPDF):
    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("cjk", size=8)
        self.set_text_color(110, 110, 110)
        self.cell(0, 8, FOOTER.format(self.page_no()), align="C")


FOOTER = "本文书由 govflow 政务服务平台出具并加盖电子签章，可在 PDF 阅读器中验证签名　第 {} 页"


def _text_of(doc: Document) -> str:
    parts = [doc.title, doc.number, doc.issuer, doc.issued_on, doc.subtitle, doc.addressee, doc.items_title,
             doc.qr_caption, FOOTER, "0123456789（）：。，、；“”—…　"]
    parts += [f"{label}{value}" for label, value in doc.lines] + doc.paragraphs + doc.items
    return "".join(parts) + "".join(chr(c) for c in range(0x20, 0x7F))


def _subset_font(path: str, index: int, text: str, folder: Path) -> str:
    """The glyphs of ``text`` only, as a small OpenType file for fpdf2: loading the full CJK font
    (tens of thousands of glyphs) into fpdf2 costs seconds per document, a lazy subset first a fraction."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    font = TTFont(path, fontNumber=index, lazy=True)
    options = subset.Options()
    options.name_IDs = ["*"]
    options.notdef_outline = True
    options.layout_features = []
    options.drop_tables += ["FFTM", "GSUB", "GPOS", "GDEF", "BASE", "JSTF", "VORG", "vhea", "vmtx", "DSIG"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    out = folder / f"{Path(path).stem}-{index}.otf"
    font.save(str(out))
    return str(out)


def render(doc: Document) -> bytes:
    import tempfile

    (regular, r_index), (bold, b_index) = font_files()
    text = _text_of(doc)
    with tempfile.TemporaryDirectory(prefix="govflow-pdf-") as folder:
        regular_file = _subset_font(regular, r_index, text, Path(folder))
        bold_file = regular_file if (bold, b_index) == (regular, r_index) else _subset_font(bold, b_index, text,
                                                                                         Path(folder))
        return _render(doc, regular_file, bold_file)


def _render(doc: Document, regular: str, bold: str) -> bytes:
    pdf = _Pdf(format="A4")
    pdf.set_margins(22, 20, 22)
    pdf.set_auto_page_break(True, margin=22)
    pdf.add_font("cjk", "", regular)
    pdf.add_font("cjk", "B", bold)
    pdf.set_title(doc.title)
    pdf.set_author(doc.issuer)
    pdf.set_creator("govflow")
    pdf.set_lang("zh-CN")
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    pdf.set_font("cjk", "B", 20)
    pdf.set_text_color(180, 20, 20)
    pdf.cell(width, 12, doc.issuer, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("cjk", "B", 18)
    pdf.cell(width, 12, doc.title, align="C", new_x="LMARGIN", new_y="NEXT")
    if doc.subtitle:
        pdf.set_font("cjk", "", 11)
        pdf.cell(width, 7, doc.subtitle, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 10.5)
    pdf.cell(width, 8, doc.number, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(180, 20, 20)
    pdf.set_line_width(0.6)
    pdf.line(pdf.l_margin, pdf.get_y() + 1, pdf.l_margin + width, pdf.get_y() + 1)
    pdf.ln(6)

    if doc.addressee:
        pdf.set_font("cjk", "", 12)
        pdf.multi_cell(width, 8, f"{doc.addressee}：", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", "", 12)
    text_width = width - (44 if doc.qr_png else 0)
    top = pdf.get_y()
    for label, value in doc.lines:
        pdf.set_font("cjk", "B", 11.5)
        pdf.cell(32, 8.5, label)
        pdf.set_font("cjk", "", 11.5)
        pdf.multi_cell(text_width - 32, 8.5, value or "—", new_x="LMARGIN", new_y="NEXT")
    if doc.qr_png:
        pdf.image(io.BytesIO(doc.qr_png), x=pdf.l_margin + width - 40, y=top, w=40, h=40)
        pdf.set_font("cjk", "", 8)
        pdf.set_xy(pdf.l_margin + width - 44, top + 41)
        pdf.multi_cell(48, 4.5, doc.qr_caption, align="C")
        pdf.set_y(max(pdf.get_y(), top + 8.5 * len(doc.lines)))
    pdf.ln(3)
    pdf.set_font("cjk", "", 12)
    for paragraph in doc.paragraphs:
        pdf.multi_cell(width, 8, "　　" + paragraph, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    if doc.items:
        if doc.items_title:
            pdf.set_font("cjk", "B", 12)
            pdf.multi_cell(width, 8, doc.items_title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", "", 12)
        for i, item in enumerate(doc.items, 1):
            pdf.multi_cell(width, 8, f"　　{i}. {item}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    pdf.ln(10)
    pdf.set_font("cjk", "", 12)
    pdf.cell(width, 8, f"{doc.issuer}（电子签章）", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(width, 8, doc.issued_on, align="R", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def sign(pdf: bytes, key: DepartmentKey, keys: DocumentKeys, *, reason: str, location: str = "") -> bytes:
    """A PAdES (ETSI.CAdES.detached) signature over the whole file with the department's key."""
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(signing_cert=key.asn1_certificate(), signing_key=key.asn1_key(),
                                  cert_registry=SimpleCertificateStore.from_certs(keys.trust_roots()))
    meta = signers.PdfSignatureMetadata(field_name="Signature", subfilter=SigSeedSubFilter.PADES,
                                        reason=reason, location=location or None, name=key.department)
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer)
    return out.getvalue()




@dataclass(frozen=True)
class Verification:
    intact: bool
    valid: bool
    trusted: bool
    covers_whole_file: bool
    signer: str


async def verify(pdf: bytes, keys: DocumentKeys) -> Verification:
    """Check the document's one signature: intact, cryptographically valid, chained to the CA, and
    covering the entire file (nothing appended after signing)."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf))
    [embedded] = reader.embedded_signatures
    status = await async_validate_pdf_signature(embedded, ValidationContext(trust_roots=keys.trust_roots()))
    return Verification(intact=status.intact, valid=status.valid, trusted=status.trusted,
                        covers_whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
                        signer=status.signing_cert.subject.human_friendly)
