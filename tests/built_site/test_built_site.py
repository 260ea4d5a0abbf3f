"""Checks on the built site (`_build/html`); `.ci/run` runs them after `make book`.

Marked ``site`` and left out of `make test`, which runs before any build.
"""

import json
import re

import pytest
from bs4 import BeautifulSoup

from bdl_src import results

from .common import HTML, ROOT, toc_pages

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


CHAPTERS = ["book/bayesian_modeling", "book/bnn", "book/vae", "book/ssvae"]


@pytest.mark.parametrize("page", CHAPTERS)
def test_chapter_has_a_model_diagram_exercises_solutions_and_takeaways(page):
    """Every chapter shows a diagram of its model drawn by pyro.render_model (a figure
    named fig-diagram-*, an SVG image), at least three exercises each with a solution
    whose code ran (an output or a glued figure in it), key takeaways and pointers."""
    soup = BeautifulSoup((HTML / f"{page}.html").read_text(), "html.parser")
    main = soup.find("main") or soup
    diagrams = [f for f in main.find_all("figure")
                if (f.get("id") or "").startswith("fig-diagram")]
    assert diagrams, f"{page}: no model diagram"
    for figure in diagrams:
        img = figure.find("img")
        assert img is not None and img["src"].endswith(".svg"), figure.get("id")
    exercises = main.select("div.exercise")
    solutions = main.select("div.solution")
    assert len(exercises) >= 3, f"{page}: {len(exercises)} exercises"
    assert len(solutions) >= len(exercises), f"{page}: an exercise lacks a solution"
    for solution in solutions:
        cells = solution.select("div.cell")
        assert cells, f"{page}: a solution without executed code"
        shown = solution.select("div.cell_output") or solution.find("figure")
        assert shown, f"{page}: a solution shows no output and no figure"
    headings = [h.get_text(" ").strip().rstrip("#").strip()
                for h in main.find_all("h2")]
    for wanted in ("Key takeaways", "Try next"):  # after the section number
        assert any(h.endswith(wanted) for h in headings), (page, wanted, headings)


def numbers(cell: str) -> tuple[float, float]:
    """A table cell's value and its spread: "92.6 ± 0.2 %" -> (92.6, 0.2), "96.2 %" ->
    (96.2, 0.0)."""
    found = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", cell)]
    return found[0], (found[1] if "±" in cell else 0.0)


def test_readme_numbers_agree_with_this_build():
    """The README's table (written by `python -m bdl_src.results readme` from some
    build) against the one this build would write: the same rows, and every number
    within three of its spreads (seeds, label draws) or, for single numbers, within
    the rounding of its last digit and 1 % (another machine's floating point)."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split(results.README_START)[1].split(results.README_END)[0]
    built = json.loads((ROOT / "_build" / "metrics.json").read_text())
    ours = results.readme_table(built)

    def rows(text):
        return {tuple(c.strip() for c in line.strip("|").split("|")[:2]):
                line.strip("|").split("|")[2].strip()
                for line in text.strip().splitlines()[2:]}

    theirs, mine = rows(block), rows(ours)
    assert theirs.keys() == mine.keys(), "README rows differ: run " \
        "`.venv/bin/python -m bdl_src.results readme` after `make book`"
    for key, cell in theirs.items():
        (a, sd_a), (b, sd_b) = numbers(cell), numbers(mine[key])
        digits = len(cell.split("±")[0].split(".")[1].split()[0]) if "." in cell else 0
        tolerance = max(3 * max(sd_a, sd_b), 10 ** -digits, 0.01 * abs(b))
        assert abs(a - b) <= tolerance, f"README {key}: {cell}, this build: {mine[key]}"
