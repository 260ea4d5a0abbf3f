"""Sphinx extension: pages re-execute whenever the library code they run changes.

jupyter-cache keys a page on its own cells, and Sphinx re-reads only pages whose source
changed, so an edit in ``bdl_src`` alone would leave stale outputs. This extension
hashes every ``bdl_src/**/*.py``; when the hash differs from the last successful build
it empties the execution cache and marks every page outdated. Models come from the
checkpoint cache, so re-executing costs seconds, not retraining. The results page,
which shows what the chapters record, is read last and whenever a chapter was read
(``_read_last``, ``_outdated``). Figures outside the numbered chapters carry no number
(``_unnumbered_figures``). It also removes
duplicated inline scripts from every page (``_dedupe_scripts``), serves MathJax locally
(``_local_mathjax``), offers every executed page as a notebook download
(``_notebook_download``), links the whole book's PDF from every page once ``make pdf``
has printed it from the same sources (``_pdf_link``) and registers the bibliography's
author-year labels (``bdl_src.bibstyle``).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from bdl_src import bibstyle

PACKAGE = Path(__file__).resolve().parent


def source_hash() -> str:
    h = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        h.update(path.relative_to(PACKAGE).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _stamp(app) -> Path:
    return Path(app.outdir).parent / ".bdl_src.sha256"


def _check(app, config) -> None:
    stamp = _stamp(app)
    app._bdl_hash = source_hash()
    app._bdl_changed = not stamp.exists() or stamp.read_text() != app._bdl_hash
    if app._bdl_changed:
        cache = (config.nb_execution_cache_path
                 or Path(app.outdir).parent / ".jupyter_cache")
        shutil.rmtree(cache, ignore_errors=True)


# Pages that read what the chapters record (bdl_src.results.record): read after every
# other page, and again whenever any other page was read (and so ran).
READ_LAST = ("book/results",)


def _outdated(app, env, added, changed, removed):
    if app._bdl_changed:
        return sorted(env.found_docs)
    if set(added) | set(changed) - set(READ_LAST):
        return [doc for doc in READ_LAST if doc in env.found_docs]
    return []


def _read_last(app, env, docnames) -> None:
    """Sphinx reads pages in alphabetical order; the results page must come after the
    chapters whose numbers it shows."""
    docnames.sort(key=lambda doc: doc in READ_LAST)


def _finished(app, exception) -> None:
    if exception is None:
        _stamp(app).write_text(app._bdl_hash)


def _unnumbered_figures(app, env) -> list[str]:
    """Figures of pages outside the numbered chapters (the introduction, the
    appendices) carry no number: Sphinx would number them "Fig. 1", "Fig. 2" in one
    sequence beside the chapters' "Fig. 4.1". Such figures are referred to in words."""
    for doc in list(env.toc_fignumbers):
        if not env.toc_secnumbers.get(doc):
            del env.toc_fignumbers[doc]
    return []


def _dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop repeated inline scripts. sphinx-thebe and sphinx-togglebutton add their
    inline configuration after the HTML builder started, so it reaches the page twice:
    once from the registry (file name ``""``) and once added directly (file name
    ``None``), which Sphinx 7.4 does not see as equal. The second ``const THEBE_JS_URL``
    is a JavaScript error on every page."""
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (str(script.filename or ""), tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique  # in place: later handlers append to this list


MATHJAX = "mathjax/tex-svg-full.js"  # MathJax 3, every TeX extension, SVG output


def _local_mathjax(app, config) -> None:
    """Serve MathJax from the site itself so that equations render offline.

    ``make book`` puts MathJax's single-file SVG build (from the npm registry) in
    ``_build/.mathjax/``; it needs no fonts or other files. Without it the CDN default
    stays."""
    holder = Path(app.outdir).parent / ".mathjax"
    if (holder / MATHJAX).is_file():
        config.html_static_path = [*config.html_static_path, str(holder)]
        config.mathjax_path = MATHJAX


def _notebook_download(app, pagename, templatename, context, doctree) -> None:
    """Offer each executed page as a notebook: sphinx-book-theme shows a ``.ipynb``
    download button when ``ipynb_source`` is set, and myst-nb leaves the executed
    notebook in ``_build/jupyter_execute/``."""
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if executed.is_file():
        target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(executed, target)
        context["ipynb_source"] = f"{pagename}.ipynb"


PDF = "book.pdf"  # the whole book, printed by `make pdf` (bdl_src/pdf.py)
BOOK_SOURCES = ("_config.yml", "_toc.yml", "book", "_static")


def book_hash(root: Path) -> str:
    """A hash of everything a page's content comes from: the library (``source_hash``),
    the pages, the configuration and the site's static files."""
    h = hashlib.sha256(source_hash().encode())
    for name in BOOK_SOURCES:
        path = Path(root) / name
        for file in sorted([path] if path.is_file() else path.rglob("*")):
            if file.is_file():
                h.update(file.relative_to(root).as_posix().encode())
                h.update(file.read_bytes())
    return h.hexdigest()


def pdf_path(outdir) -> Path:
    return Path(outdir).parent / "pdf" / PDF


def _pdf_link(app, config) -> None:
    """Link the PDF only when one was printed from these very sources: ``make pdf``
    stamps it with ``book_hash``. Without it (``make book`` alone, or a page edited
    since) no page links it and ``book.pdf`` leaves the site. ``bdl_pdf`` is an
    HTML-rebuild setting: a change either way rewrites every page (no re-execution)."""
    pdf = pdf_path(app.outdir)
    stamp = pdf.with_suffix(".sha256")
    current = (pdf.is_file() and stamp.is_file()
               and stamp.read_text() == book_hash(app.srcdir))
    config.bdl_pdf = PDF if current else ""


def _pdf_button(app, pagename, templatename, context, doctree) -> None:
    """A header button on every page of the site (not of the single page that is
    printed): runs after sphinx-book-theme's own buttons (priority 501)."""
    site = app.builder.name == "html" and "header_buttons" in context
    if app.config.bdl_pdf and site:
        context["header_buttons"].insert(0, {
            "type": "link", "url": context["pathto"](app.config.bdl_pdf, 1),
            "text": "PDF", "icon": "fas fa-file-pdf", "label": "book-pdf-button",
            "tooltip": "The whole book as one PDF"})


def _pdf_copy(app, exception) -> None:
    if exception is None and app.builder.name == "html":
        target = Path(app.outdir) / PDF
        if app.config.bdl_pdf:
            shutil.copyfile(pdf_path(app.outdir), target)
        else:
            target.unlink(missing_ok=True)


def _singlehtml_handlers(app) -> None:
    """Let the single-page builder (``make pdf``) render every node the HTML builder
    renders. Sphinx falls back to the ``html`` handlers only when no extension
    registered any for ``singlehtml``; sphinx-exercise does, so myst-nb's folded cells
    (``HideCodeCellNode``) would stop the build."""
    if app.builder.name == "singlehtml":
        handlers = app.registry.translation_handlers
        single = handlers.setdefault("singlehtml", {})
        for name, pair in handlers.get("html", {}).items():
            single.setdefault(name, pair)


def setup(app):
    bibstyle.register()
    app.add_config_value("bdl_pdf", "", "html")
    app.connect("config-inited", _pdf_link)
    app.connect("html-page-context", _pdf_button, priority=502)
    app.connect("build-finished", _pdf_copy)
    app.connect("builder-inited", _singlehtml_handlers)
    app.connect("config-inited", _check)
    app.connect("config-inited", _local_mathjax)
    app.connect("env-get-outdated", _outdated)
    app.connect("env-before-read-docs", _read_last)
    # after Sphinx's TocTreeCollector numbered them in the same event (priority 500)
    app.connect("env-get-updated", _unnumbered_figures, priority=900)
    app.connect("build-finished", _finished)
    app.connect("html-page-context", _dedupe_scripts, priority=100)
    app.connect("html-page-context", _notebook_download, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
