"""Styling shared by every chapter's figures, and the rule that keeps them readable.

Every figure is drawn for the column it is shown in: the article column of a 1280-pixel
screen is about 676 CSS pixels, 7.0 inches at 96 pixels per inch. A figure at most
``COLUMN_INCHES`` wide (6.8, leaving 0.2 in for the margin that the notebook's tight
cropping adds) is shown at its drawn size, so its text keeps its point size;
``MIN_POINTS`` (9 pt, 12 CSS pixels) is the smallest text the book allows. ``figure()``
refuses a wider figure, and returns a ``BookFigure``, which refuses to be drawn with
smaller text. (A notebook shows such an error in place of the figure;
tests/built_site checks that no executed page holds one.)
"""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt  # importing pyplot lets a notebook display figures
import matplotlib.text
import numpy as np
from matplotlib.figure import Figure

# Colour-blind-safe palette (Okabe & Ito), readable on light and dark pages alike.
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
          "#000000"]

plt.rcParams.update({
    "figure.dpi": 150,  # sharp in the book; CSS scales wide figures down
    "savefig.dpi": 150,
    "figure.facecolor": "white",  # opaque: plots stay readable in dark mode
    "axes.facecolor": "white",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.prop_cycle": matplotlib.cycler(color=COLORS),
    "legend.frameon": False,
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 9,
    "figure.titlesize": 10,
})

COLUMN_INCHES = 6.8  # the article column at 1280 px (676 CSS px, 7.0 in) less 0.2 in
MIN_POINTS = 9.0  # the smallest text on screen, in points (12 CSS pixels)


def unreadable(fig: Figure) -> list[str]:
    """The text of a drawn figure smaller than ``MIN_POINTS`` (tick labels, titles,
    legends, annotations)."""
    problems = []
    for text in fig.findobj(matplotlib.text.Text):
        if text.get_visible() and text.get_text().strip() and \
                text.get_fontsize() < MIN_POINTS - 1e-6:
            problems.append(f"{text.get_text()[:30]!r} at {text.get_fontsize():g} pt")
    return problems


class BookFigure(Figure):
    """A Figure that checks ``unreadable`` each time it is drawn (saved or shown)."""

    def draw(self, renderer):
        super().draw(renderer)
        problems = unreadable(self)
        if problems:
            raise ValueError("figure breaks the book's figure rule (plots/common.py): "
                             + "; ".join(problems[:8]))


def figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 3.6,
           **kwargs) -> tuple[Figure, np.ndarray]:
    """A new figure (not registered with pyplot, so nothing leaks between cells) and its
    axes as an array."""
    if width > COLUMN_INCHES + 1e-9:
        raise ValueError(f"a figure {width} in wide is wider than the book's column "
                         f"({COLUMN_INCHES} in, plots/common.py): draw it narrower")
    fig = BookFigure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, axes


def image_grid(images, nrows: int, ncols: int, titles=None, width: float = 6.4,
               cmap: str = "gray_r") -> Figure:
    """Show ``images`` (N, 784) or (N, 28, 28) in a grid without axes."""
    images = np.asarray(images).reshape(-1, 28, 28)
    fig, axes = figure(ncols, nrows, width=width, height=width * nrows / ncols * 1.1)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap=cmap, vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=MIN_POINTS)
    return fig
