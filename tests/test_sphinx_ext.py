"""The site links the book's PDF only when one was printed from the current sources, and
the single-page builder renders what the HTML builder renders."""

from pathlib import Path
from types import SimpleNamespace

from bdl_src import sphinx_ext

ROOT = Path(__file__).resolve().parent.parent


def site(tmp_path, builder="html"):
    """A stand-in for the Sphinx application: the repository's sources, an output
    folder in ``tmp_path``."""
    config = SimpleNamespace(bdl_pdf="")
    return SimpleNamespace(srcdir=str(ROOT), outdir=str(tmp_path / "html"),
                           config=config, builder=SimpleNamespace(name=builder))


def printed(tmp_path, stamp: str) -> Path:
    pdf = tmp_path / "pdf" / sphinx_ext.PDF
    pdf.parent.mkdir()
    pdf.write_bytes(b"%PDF-1.4 the book")
    pdf.with_suffix(".sha256").write_text(stamp)
    return pdf


def test_no_pdf_no_link_and_none_served(tmp_path):
    app = site(tmp_path)
    sphinx_ext._pdf_link(app, app.config)
    assert app.config.bdl_pdf == ""
    served = Path(app.outdir) / sphinx_ext.PDF
    served.parent.mkdir()
    served.write_bytes(b"an old PDF")
    sphinx_ext._pdf_copy(app, None)
    assert not served.exists()


def test_pdf_of_these_sources_is_linked_and_served(tmp_path):
    app = site(tmp_path)
    pdf = printed(tmp_path, sphinx_ext.book_hash(ROOT))
    sphinx_ext._pdf_link(app, app.config)
    assert app.config.bdl_pdf == sphinx_ext.PDF
    Path(app.outdir).mkdir()
    sphinx_ext._pdf_copy(app, None)
    assert (Path(app.outdir) / sphinx_ext.PDF).read_bytes() == pdf.read_bytes()

    context = {"header_buttons": [], "pathto": lambda name, resource: f"../{name}"}
    sphinx_ext._pdf_button(app, "book/intro", "page.html", context, None)
    assert context["header_buttons"][0]["url"] == "../book.pdf"


def test_pdf_of_other_sources_is_not_linked(tmp_path):
    app = site(tmp_path)
    printed(tmp_path, "0" * 64)  # printed before an edit
    sphinx_ext._pdf_link(app, app.config)
    assert app.config.bdl_pdf == ""


def test_single_page_builder_gets_the_html_handlers():
    def visit(self, node):
        pass

    handlers = {"html": {"HideCodeCellNode": (visit, None), "solution": (visit, None)},
                "singlehtml": {"solution": (None, None)}}
    app = SimpleNamespace(builder=SimpleNamespace(name="singlehtml"),
                          registry=SimpleNamespace(translation_handlers=handlers))
    sphinx_ext._singlehtml_handlers(app)
    assert handlers["singlehtml"]["HideCodeCellNode"] == (visit, None)
    assert handlers["singlehtml"]["solution"] == (None, None)  # its own stays
