"""Checks on the built site (`_build/html`); `.ci/run` runs them after `make book`.

Marked ``site`` and left out of `make test`, which runs before any build.
"""

import pytest
from bs4 import BeautifulSoup

from .common import HTML, toc_pages

pytestmark = pytest.mark.site


@pytest.fixture(scope="module", autouse=True)
def built():
    assert (HTML / "index.html").is_file(), "no built site: run `make book` first"


@pytest.mark.parametrize("page", toc_pages())
def test_page_is_built_and_clean(page):
    path = HTML / f"{page}.html"
    assert path.is_file(), f"{page} in _toc.yml has no HTML page"
    soup = BeautifulSoup(path.read_text(), "html.parser")
    main = soup.find("main") or soup
    text = main.get_text(" ")
    assert "Traceback (most recent call last)" not in text
    assert "<Figure size" not in text, "a figure was printed as text instead of drawn"
    for cls in ("stderr", "traceback", "error", "system-message", "problematic"):
        bad = main.select(f".output.{cls}, .{cls}.highlight-ipythontb, "
                          ".system-message, .problematic")
        assert not bad, f"{page}: {cls} output: {bad[0].get_text()[:200]}"
    for img in main.find_all("img"):
        src = img.get("src", "")
        if not src.startswith(("http", "data:")):
            assert (path.parent / src).resolve().is_file(), (
                f"{page}: missing image {src}")


@pytest.mark.parametrize("page", toc_pages())
def test_page_offers_source_and_notebook_downloads(page):
    html = (HTML / f"{page}.html").read_text()
    wanted = [".md"]
    if "kernelspec:" in (HTML.parents[1] / f"{page}.md").read_text():
        wanted.append(".ipynb")  # executed pages also come as notebooks
    for suffix in wanted:
        assert f"_sources/{page}{suffix}" in html, f"{page}: no {suffix} download"
        assert (HTML / "_sources" / f"{page}{suffix}").is_file()
