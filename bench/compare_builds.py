"""Do two builds of the book show the same numbers? Compares every page's text.

    .venv/bin/python bench/compare_builds.py _build/html OTHER/_build/html

Each page of the first build is read as text (scripts, styles and tags removed) and its
numbers are aligned with those of the same page of the second (difflib). Prints each
page's count of numbers and every difference with its surrounding words, so that timings
(which differ between any two runs) are easy to tell from results (which must not).
Exit status 0 when every number is equal, 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

NUMBER = re.compile(r"-?\d[\d,]*\.?\d*(?:e[-+]?\d+)?")


class _Text(HTMLParser):
    """The visible text of the article body of a page."""

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag):
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def page_text(path: Path) -> str:
    html = path.read_text(encoding="utf-8")
    main = re.search(r"<main.*?</main>", html, re.S)
    parser = _Text()
    parser.feed(main.group(0) if main else html)
    return " ".join(" ".join(parser.parts).split())


def numbers(text: str) -> list[tuple[str, str]]:
    """Each number of ``text`` with the words just before it."""
    return [(m.group(0), text[max(0, m.start() - 60):m.start()].strip())
            for m in NUMBER.finditer(text)]


def compare(first: Path, second: Path) -> int:
    differences = 0
    for page in sorted(first.rglob("*.html")):
        rel = page.relative_to(first)
        if rel.parts[0] in ("_static", "_sources", "_images") or rel.name in (
                "genindex.html", "search.html"):
            continue
        other = second / rel
        if not other.exists():
            print(f"{rel}: missing from {second}")
            differences += 1
            continue
        a, b = numbers(page_text(page)), numbers(page_text(other))
        # Align the two sequences (a changed table must not shift every later number).
        matcher = difflib.SequenceMatcher(a=[x for x, _ in a], b=[y for y, _ in b],
                                          autojunk=False)
        diff = []
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op != "equal":
                diff.append((a[i1:i2], b[j1:j2]))
        print(f"{rel}: {len(a)} numbers, {sum(len(x) for x, _ in diff)} differ")
        for xs, ys in diff:
            context = (xs or ys)[0][1]
            print(f"    {' '.join(x for x, _ in xs) or '(none)'} vs "
                  f"{' '.join(y for y, _ in ys) or '(none)'}   after: "
                  f"...{context[-50:]}")
        differences += len(diff)
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="a built site, e.g. _build/html")
    parser.add_argument("second", type=Path, help="another build of the same commit")
    args = parser.parse_args()
    differences = compare(args.first, args.second)
    print(f"{differences} difference(s)")
    sys.exit(1 if differences else 0)


if __name__ == "__main__":
    main()
