"""Model diagrams: ``pyro.render_model``'s graph as an SVG the book can show."""

from __future__ import annotations

import shutil

from IPython.display import SVG


def as_svg(graph) -> SVG:
    """The SVG of ``graph`` (a ``graphviz.Digraph``, as ``pyro.render_model`` gives it)
    on a white background, so that it reads in dark mode too.

    Raises ``RuntimeError`` if Graphviz's ``dot`` program is missing, instead of
    leaving a page without its diagram."""
    if shutil.which("dot") is None:
        raise RuntimeError("Graphviz's `dot` program is missing; the book draws its "
                           "model diagrams with it: apt-get install graphviz (Debian, "
                           "Ubuntu), brew install graphviz (macOS)")
    graph = graph.copy()
    graph.attr(bgcolor="white", pad="0.1")
    return SVG(graph.pipe(format="svg"))
