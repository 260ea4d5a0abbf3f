"""Checks on the book's sources: what readers copy exists, and every glued name is glued."""

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted((ROOT / "book").glob("*.md"))


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for entry in toc.get("chapters", []):
        files.append(entry["file"])
    for part in toc.get("parts", []):
        files += [c["file"] for c in part["chapters"]]
    return files


def test_every_toc_entry_has_a_page():
    for name in toc_files():
        assert (ROOT / f"{name}.md").is_file(), name


def defined_objects(path: Path) -> set[str]:
    """Dotted names of the module's top-level functions/classes and their methods."""
    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
            if isinstance(node, ast.ClassDef):
                names |= {f"{node.name}.{m.name}" for m in node.body
                          if isinstance(m, ast.FunctionDef)}
    return names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_literalinclude_targets_exist(page):
    text = page.read_text()
    for match in re.finditer(r"```\{literalinclude\} (\S+)\n((?::\w+:.*\n)*)", text):
        target = (page.parent / match.group(1)).resolve()
        assert target.is_file(), match.group(1)
        obj = re.search(r":pyobject: (\S+)", match.group(2))
        if obj:
            assert obj.group(1) in defined_objects(target), (page.name, obj.group(1))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_glue_reference_is_glued_on_its_page(page):
    text = page.read_text()
    if re.search(r"glue\(\s*[^\s\"]", text):
        pytest.skip("names glued in a loop: the build itself checks them (-W)")
    used = set(re.findall(r"\{glue:\w+\}`([\w]+)", text))
    used |= set(re.findall(r"```\{glue:figure\} (\w+)", text))
    glued = set(re.findall(r"glue\(\s*\"(\w+)\"", text))
    assert used <= glued, sorted(used - glued)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_citations_exist_in_bibliography(page):
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = {k.strip() for group in re.findall(r"\{cite[:pt]*\}`([^`]+)`", page.read_text())
             for k in group.split(",")}
    assert cited <= keys, sorted(cited - keys)
