"""Styling shared by every chapter's figures."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt  # importing pyplot lets a notebook display figures
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
})


def figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 3.6,
           **kwargs) -> tuple[Figure, np.ndarray]:
    """A new figure (not registered with pyplot, so nothing leaks between cells) and its
    axes as an array."""
    fig = Figure(figsize=(width, height), layout="constrained")
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
                ax.set_title(titles[i], fontsize=8)
    return fig
