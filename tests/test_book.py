"""Checks on the book's sources: what readers copy exists, and every glued name is
glued."""

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
    """Names glued literally must cover every reference; a name glued in a loop
    (``glue(f"acc_{n}", ...)``) counts as a pattern (``acc_\\w+``). The built-site
    check ``test_every_glue_reference_was_glued`` then checks the exact names."""
    text = page.read_text()
    if re.search(r"glue\(\s*[^\s\"f]", text):
        pytest.skip("names glued from variables: checked on the built site "
                    "(tests/built_site/test_pages.py)")
    used = set(re.findall(r"\{glue:\w+\}`([\w]+)", text))
    used |= set(re.findall(r"```\{glue:figure\} (\w+)", text))
    glued = set(re.findall(r"glue\(\s*\"(\w+)\"", text))
    patterns = [re.sub(r"\\\{[^}]*\\\}", r"\\w+", re.escape(f)) + "$"
                for f in re.findall(r"glue\(\s*f\"([^\"]+)\"", text)]
    missing = {n for n in used - glued if not any(re.match(p, n) for p in patterns)}
    assert not missing, sorted(missing)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_citations_exist_in_bibliography(page):
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    cited = {k.strip()
             for group in re.findall(r"\{cite[:pt]*\}`([^`]+)`", page.read_text())
             for k in group.split(",")}
    assert cited <= keys, sorted(cited - keys)


def bib_entries() -> dict[str, str]:
    bib = (ROOT / "book" / "references.bib").read_text()
    return dict(re.findall(r"@\w+\{([^,]+),(.*?)\n\}", bib, re.S))


def test_every_bibliography_entry_is_cited_and_dated():
    """The references page lists the whole file (``:all:``): nothing there that no page
    cites, and no "n.d." label."""
    cited = {k.strip() for page in PAGES
             for group in re.findall(r"\{cite[:pt]*\}`([^`]+)`", page.read_text())
             for k in group.split(",")}
    entries = bib_entries()
    assert set(entries) <= cited, sorted(set(entries) - cited)
    undated = [k for k, body in entries.items() if not re.search(r"\byear\s*=", body)]
    assert not undated, undated


def test_bibliography_labels_read_as_author_and_year():
    from pybtex.database import parse_string

    from bdl_src.bibstyle import LabelStyle

    bib = parse_string((ROOT / "book" / "references.bib").read_text(), "bibtex")
    labels = dict(zip(bib.entries, LabelStyle().format_labels(bib.entries.values())))
    assert labels["blei2017variational"] == "Blei et al., 2017"
    assert labels["kendall2017uncertainties"] == "Kendall and Gal, 2017"
    assert labels["bishop2006pattern"] == "Bishop, 2006"
    assert labels["pyro_poutine"].startswith("Pyro developers, 2019")
    assert len(set(labels.values())) == len(labels)  # 2019a, 2019b where they'd clash


CHAPTERS = ["bayesian_modeling", "bnn", "vae", "ssvae"]
PLUMBING = ["fit_or_load", "sys.modules", "restore_guide", "data_parallel", "torchrun",
            "DistributedDataParallel", "distributed"]


def included_sources(page: Path) -> list[str]:
    """The source of every ``:pyobject:`` a page shows with ``literalinclude``."""
    out = []
    for match in re.finditer(r"```\{literalinclude\} (\S+)\n((?::\w+:.*\n)*)",
                             page.read_text()):
        obj = re.search(r":pyobject: (\S+)", match.group(2))
        if not obj:
            continue
        tree = ast.parse((page.parent / match.group(1)).read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and \
                    node.name == obj.group(1).split(".")[-1]:
                out.append(ast.unparse(node))
    return out


@pytest.mark.parametrize("name", CHAPTERS)
def test_chapter_shows_its_svi_loop_and_no_build_plumbing(name):
    page = ROOT / "book" / f"{name}.md"
    shown = included_sources(page)
    assert any("SVI(" in src and "svi.step(" in src for src in shown), \
        f"{name}.md shows no function with SVI(...) and svi.step(...)"
    text = page.read_text() + "\n".join(shown)
    for word in PLUMBING:
        assert word not in text, f"{name}.md shows {word!r}"


def test_bibliography_is_sorted_as_its_labels_read():
    from pybtex.database import parse_string

    from bdl_src.bibstyle import SortingStyle, author_year

    bib = parse_string((ROOT / "book" / "references.bib").read_text(), "bibtex")
    entries = SortingStyle().sort(list(bib.entries.values()))
    labels = [author_year(e).lower() for e in entries]
    assert labels == sorted(labels)
    first_p = next(i for i, lab in enumerate(labels) if lab.startswith("p"))
    assert labels[first_p].startswith("pyro developers")
