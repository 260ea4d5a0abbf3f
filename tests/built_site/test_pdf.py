"""The PDF of the whole book (`make pdf`, bdl_src/pdf.py), read back from the file.

Its length; every figure of the single-page site it was printed from on the page of its
caption (a raster figure as an image of the same pixel size, a diagram by the words it
draws); no word of code, output, table or prose past the page margins (a line cut off
at the page edge would be); and a link to it from every page of the site. Equations are
checked when the book is printed: bdl_src.pdf stops if MathJax left any untypeset.

Reads the PDF with Debian's poppler-utils (`pdfinfo`, `pdfimages`, `pdftotext`), which
.ci/run installs; skipped until `make pdf` has run (.ci/run runs it, then this file).
"""

import re
import shutil
import struct
import subprocess
from collections import Counter, defaultdict
from html import unescape

import pytest
import yaml
from bs4 import BeautifulSoup

from bdl_src.pdf import PAGE

from .common import HTML, ROOT, toc_pages

pytestmark = [pytest.mark.site, pytest.mark.pdf]
PDF = ROOT / "_build" / "pdf" / "book.pdf"
SINGLE = ROOT / "_build" / "singlehtml"
TOLERANCE = 1.5  # points: Chromium rounds the margins to whole CSS pixels
# The book's prose, code and figures fill about 140 A4 pages; far fewer means content
# went missing, far more a layout fault (a figure or a word per page).
PAGES = (80, 300)


def poppler(tool, *options) -> str:
    """What a poppler tool prints about the PDF (pdftotext to standard output)."""
    out = ["-"] if tool == "pdftotext" else []
    return subprocess.run([tool, *options, str(PDF), *out], capture_output=True,
                          text=True, check=True).stdout


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module", autouse=True)
def built():
    if not PDF.is_file():
        pytest.skip("no _build/pdf/book.pdf: run `make pdf` first (.ci/run does)")
    for tool in ("pdfinfo", "pdfimages", "pdftotext"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} is needed: apt-get install poppler-utils "
                        "(.ci/run does this)")


@pytest.fixture(scope="module")
def page_texts() -> list[str]:
    """The text of each page (index 0 is page 1), whitespace collapsed."""
    return [words(t) for t in poppler("pdftotext", "-layout").split("\f")]


@pytest.fixture(scope="module")
def article():
    """The printed page: the single-page site's root document."""
    root = yaml.safe_load((ROOT / "_toc.yml").read_text())["root"]
    return BeautifulSoup((SINGLE / f"{root}.html").read_text(),
                         "html.parser").select_one("article")


def test_page_count():
    pages = int(re.search(r"^Pages:\s+(\d+)", poppler("pdfinfo"), re.M).group(1))
    assert PAGES[0] <= pages <= PAGES[1], f"{pages} pages, expected {PAGES}"


def png_size(path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG: {path}"
    return struct.unpack(">II", head[16:24])


def caption_start(figure) -> tuple[str, str]:
    """A figure's number ("Fig. 2.3"; "" outside the numbered chapters) and the first
    words of its caption, math left out (MathJax draws it as paths, not text)."""
    caption = figure.find("figcaption")
    numbered = caption.select_one(".caption-number")
    number = words(numbered.get_text()) if numbered else ""
    text = caption.select_one(".caption-text")
    for math in text.select(".math"):
        math.decompose()
    return number, " ".join(text.get_text().split()[:4])


def test_every_figure_is_printed(article, page_texts):
    images = defaultdict(set)  # page -> pixel sizes of the images on it
    for line in poppler("pdfimages", "-list").splitlines()[2:]:
        page, _, kind, width, height = line.split()[:5]
        if kind == "image":
            images[int(page)].add((int(width), int(height)))
    missing, figures = [], article.select("img")
    assert figures, "no figures in the printed page"
    for img in figures:
        src = SINGLE / img["src"]
        number, start = caption_start(img.find_parent("figure"))
        pages = [i + 1 for i, t in enumerate(page_texts)
                 if f"{number} {start}".strip() in t]
        if len(pages) != 1:
            missing.append(f"{number}: caption '{start}' on pages {pages}")
            continue
        near = {pages[0], pages[0] - 1}  # the caption may start the next page
        if src.suffix == ".png":
            size = png_size(src)
            if not any(size in images[p] for p in near):
                missing.append(f"{number}: no {size[0]}x{size[1]} image on page "
                               f"{pages[0]} or the one before")
        else:  # a diagram drawn as vectors: the words it draws
            drawn = [words(t.get_text()) for t in
                     BeautifulSoup(src.read_text(), "html.parser").find_all("text")]
            text = " ".join(page_texts[p - 1] for p in sorted(near) if p > 0)
            lost = [w for w in drawn if w and w not in text]
            if not drawn or lost:
                missing.append(f"{number}: diagram words {lost or drawn} not on page "
                               f"{pages[0]}")
    assert not missing, f"{len(missing)} of {len(figures)} figures: {missing}"


def test_nothing_runs_off_the_page():
    """Every word lies within the left and right margins, and the book is printed at
    full size: code and outputs wrap (_static/print.css) instead of running past the
    page edge. (Chromium shrinks a whole page whose content is too wide, so a too-wide
    line shows as body text smaller than its 16 px, whose word boxes are 14 pt tall.)"""
    left = PAGE["marginLeft"] * 72 - TOLERANCE
    off, page, heights = [], 0, Counter()
    for line in poppler("pdftotext", "-bbox").splitlines():
        if m := re.search(r'<page width="([\d.]+)"', line):
            page += 1
            right = float(m.group(1)) - PAGE["marginRight"] * 72 + TOLERANCE
        elif m := re.search(r'<word xMin="([\d.]+)" yMin="([\d.]+)" '
                            r'xMax="([\d.]+)" yMax="([\d.]+)">(.*)</word>', line):
            x_min, x_max = float(m.group(1)), float(m.group(3))
            word = unescape(m.group(5))
            heights[round(float(m.group(4)) - float(m.group(2)))] += 1
            if x_min < left or x_max > right:
                off.append(f"page {page}: {word!r} at x {x_min:.0f}-{x_max:.0f} pt")
    assert page > 0, "pdftotext found no pages"
    assert not off, f"{len(off)} words beyond the margins: {off[:10]}"
    body = heights.most_common(1)[0][0]
    assert body == 14, f"body text {body} pt tall, not 14: the page was shrunk to fit"


@pytest.mark.parametrize("page", toc_pages())
def test_every_page_links_the_pdf(page):
    """The site's header links the PDF it serves, and serves the one just printed."""
    html = HTML / f"{page}.html"
    link = BeautifulSoup(html.read_text(), "html.parser").select_one(
        "a.btn-book-pdf-button")
    assert link is not None, f"{page}: no link to the book's PDF in the header"
    served = (html.parent / link["href"]).resolve()
    assert served == (HTML / "book.pdf").resolve(), link["href"]
    assert served.is_file() and served.read_bytes() == PDF.read_bytes(), (
        "the site's book.pdf is not the PDF `make pdf` printed")
