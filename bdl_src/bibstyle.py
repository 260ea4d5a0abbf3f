"""The bibliography's labels read as author and year, like the citations in the text:
"[Blei et al., 2017]" rather than pybtex's default alpha labels ("[BKM17]").

``bdl_src.sphinx_ext`` registers the style; ``_config.yml`` selects it with
``bibtex_default_style: author_year``. Entries are sorted by their labels.
"""

from __future__ import annotations

from collections import Counter
from string import ascii_lowercase

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle

NAME = "author_year"


def surname(person) -> str:
    """A person's last name as plain text ("{Pyro developers}" -> "Pyro developers",
    "Husz{\\'a}r" -> "Huszár")."""
    latex = " ".join(person.prelast_names + person.last_names)
    return Text.from_latex(latex).render_as("text")


def author_year(entry) -> str:
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [surname(p) for p in people]
    if not names:
        who = entry.fields.get("title", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class LabelStyle(BaseLabelStyle):
    """"Author, year"; "A and B, year"; "A et al., year"; a, b, ... after the year where
    two entries would share a label."""

    def format_labels(self, sorted_entries):
        labels = [author_year(entry) for entry in sorted_entries]
        shared = {label for label, n in Counter(labels).items() if n > 1}
        seen = Counter()
        for label in labels:
            if label in shared:
                seen[label] += 1
                label += ascii_lowercase[seen[label] - 1]
            yield label


class SortingStyle(BaseSortingStyle):
    """By the label as a reader sees it ("Pyro developers" under P, not after "Xiao"
    for its braces), then by title."""

    def sorting_key(self, entry):
        return author_year(entry).lower(), entry.fields.get("title", "")


class Style(UnsrtStyle):
    default_label_style = NAME
    default_sorting_style = NAME


def register() -> None:
    register_plugin("pybtex.style.labels", NAME, LabelStyle, force=True)
    register_plugin("pybtex.style.sorting", NAME, SortingStyle, force=True)
    register_plugin("pybtex.style.formatting", NAME, Style, force=True)
