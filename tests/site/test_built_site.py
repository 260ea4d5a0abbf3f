"""Checks on the built site (`_build/html`); `.ci/run` runs them after `make book`.

Marked ``site`` and left out of `make test`, which runs before any build.
"""

from pathlib import Path

import pytest
import yaml
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[2]
HTML = ROOT / "_build" / "html"
pytestmark = pytest.mark.site


def toc_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for c in toc.get("chapters", [])]
    files += [c["file"] for p in toc.get("parts", []) for c in p["chapters"]]
    return files


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
        bad = main.select(f".output.{cls}, .{cls}.highlight-ipythontb, .system-message, "
                          ".problematic")
        assert not bad, f"{page}: {cls} output: {bad[0].get_text()[:200]}"
    for img in main.find_all("img"):
        src = img.get("src", "")
        if not src.startswith(("http", "data:")):
            assert (path.parent / src).resolve().is_file(), f"{page}: missing image {src}"
