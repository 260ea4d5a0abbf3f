"""What a reader copies from a page works: the visible cells of every executed page, in
order, run as one script from the repository root and print what the page shows; and
every number a page's prose glues in was glued by its code.

Run after `make book` (`-m site`): the models come from the build's cache, so nothing
trains here.
"""

import json
import os
import re
import subprocess
import sys

import pytest

from bdl_src.cache import cache_dir

from .common import ROOT, toc_pages

pytestmark = pytest.mark.site
EXECUTED = ROOT / "_build" / "jupyter_execute"
HIDDEN = {"remove-cell", "remove-input"}  # cells whose code a reader never sees
MARK = "@@cell {}@@"


def cache_files() -> set[str]:
    return {p.name for p in cache_dir().glob("*.safetensors")}


def executed(page: str) -> dict | None:
    path = EXECUTED / f"{page}.ipynb"
    return json.loads(path.read_text()) if path.is_file() else None


def executed_pages() -> list[str]:
    return [p for p in toc_pages() if "kernelspec:" in (ROOT / f"{p}.md").read_text()]


def visible_cells(notebook: dict) -> list[dict]:
    return [c for c in notebook["cells"] if c["cell_type"] == "code"
            and not HIDDEN & set(c["metadata"].get("tags", []))]


def lines(text: str) -> list[str]:
    """The distinct lines of ``text``, in order. (jupyter-cache's copy of a notebook can
    hold a merged stream output followed by a repeat of its last chunk, which the page
    shows once.)"""
    return list(dict.fromkeys(text.splitlines()))


def shown_text(cell: dict) -> str:
    """What the page shows a cell print (its stream outputs)."""
    return "".join("".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                   for o in cell["outputs"] if o["output_type"] == "stream")


@pytest.mark.parametrize("page", executed_pages())
def test_visible_cells_run_as_one_script_and_print_what_the_page_shows(page, tmp_path):
    notebook = executed(page)
    assert notebook is not None, f"{page} was not executed: run `make book` first"
    cells = visible_cells(notebook)
    script = []
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        assert not re.search(r"^\s*[%!]", source, re.M), f"{page}: IPython-only syntax"
        script += [f"print({MARK.format(i)!r}, flush=True)", source]
    path = tmp_path / f"{page.replace('/', '_')}.py"
    path.write_text("\n".join(script) + "\n")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    before = cache_files()
    done = subprocess.run([sys.executable, str(path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{page}: {done.stderr[-2000:]}"
    assert cache_files() == before, f"{page}: its cells trained instead of loading " \
        f"the build's models from {cache_dir()}"
    printed = re.split(r"@@cell (\d+)@@\n", done.stdout)[1:]
    by_cell = dict(zip(map(int, printed[0::2]), printed[1::2]))
    assert len(by_cell) == len(cells)
    for i, cell in enumerate(cells):
        assert lines(by_cell[i]) == lines(shown_text(cell)), (
            f"{page}, visible cell {i} prints differently from the page:\n"
            + "".join(cell["source"])[:300])


@pytest.mark.parametrize("page", executed_pages())
def test_every_glue_reference_was_glued(page):
    """Covers pages that glue in loops too, which a reading of the source cannot."""
    glued = EXECUTED / f"{page}.glue.json"
    names = set(json.loads(glued.read_text())) if glued.is_file() else set()
    text = (ROOT / f"{page}.md").read_text()
    used = set(re.findall(r"\{glue:\w+\}`(\w+)", text))
    used |= set(re.findall(r"```\{glue:figure\} (\w+)", text))
    assert used <= names, sorted(used - names)


@pytest.mark.parametrize("page", executed_pages())
def test_no_executed_cell_holds_an_error(page):
    """A figure that breaks the book's figure rule (plots/common.py), or any other
    error raised while a notebook displays a result, is caught by IPython and shown in
    place of the output without stopping the build: it must not reach a page."""
    notebook = executed(page)
    assert notebook is not None, f"{page} was not executed: run `make book` first"
    errors = [f"{o['ename']}: {o['evalue'][:300]}" for c in notebook["cells"]
              for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors, errors
