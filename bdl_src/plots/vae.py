"""Figures of chapter 3 (the VAE on Fashion-MNIST). Every function returns a Figure."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bdl_src.plots.common import COLORS, COLUMN_INCHES, figure


def elbo_curves(train_elbo, heldout_elbo, heldout: str = "test") -> Figure:
    """The negative ELBO per image, epoch by epoch, on training and held-out images."""
    fig, axes = figure(width=6.4, height=3.4)
    ax = axes[0, 0]
    epochs = np.arange(1, len(train_elbo) + 1)
    ax.plot(epochs, -np.asarray(train_elbo), marker="o", ms=3,
            label="training images (mean over the epoch's steps)")
    ax.plot(epochs, -np.asarray(heldout_elbo), marker="s", ms=3,
            label=f"{heldout} images (fixed subset, after the epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO (nats per image)")
    low = min(-np.max(train_elbo), -np.max(heldout_elbo))
    ax.set_ylim(low - 3, low + 40)  # the first epoch starts far above the rest
    ax.legend()
    return fig


def image_rows(rows, row_labels, width: float = 6.4, col_labels=None) -> Figure:
    """Rows of 28 x 28 images (each row an array (ncols, 784)), labelled on the left."""
    rows = [np.asarray(r).reshape(-1, 28, 28) for r in rows]
    nrows, ncols = len(rows), max(len(r) for r in rows)
    fig, axes = figure(ncols, nrows, width=width, height=width * nrows / ncols * 1.15)
    for i, (row, label) in enumerate(zip(rows, row_labels)):
        for j, ax in enumerate(axes[i]):
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j < len(row):
                ax.imshow(row[j], cmap="gray_r", vmin=0, vmax=1)
            if i == 0 and col_labels is not None:
                # "T-shirt/top" on two lines, so that ten labels fit side by side
                ax.set_title(col_labels[j].replace("/", "/\n"), fontsize=9)
        axes[i, 0].set_ylabel(label, fontsize=9, rotation=0, ha="right", va="center")
    return fig


def latent_scatter(points, labels, class_names, title: str | None = None) -> Figure:
    """2-D points (N, 2) coloured by class, one legend entry per class."""
    points, labels = np.asarray(points), np.asarray(labels)
    # ten distinct hues, safe for colour-blind readers (Paul Tol's "muted" scheme)
    colors = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77",
              "#CC6677", "#882255", "#AA4499", "#555555"]
    fig, axes = figure(width=6.4, height=4.6)
    ax = axes[0, 0]
    for k, name in enumerate(class_names):
        pts = points[labels == k]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.5, color=colors[k], label=name,
                   rasterized=True, linewidths=0)
    ax.set_xlabel("first principal axis")
    ax.set_ylabel("second principal axis")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    legend = ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=4,
                       fontsize=9)
    for handle in legend.legend_handles:
        handle.set_alpha(1)
    return fig


def grid(images, nrows: int, ncols: int, width: float = 6.4) -> Figure:
    """A borderless grid of images (N, 784), filled row by row."""
    images = np.asarray(images).reshape(-1, 28, 28)
    canvas = np.ones((nrows * 29 - 1, ncols * 29 - 1))  # one white pixel between images
    for i in range(min(len(images), nrows * ncols)):
        r, c = divmod(i, ncols)
        canvas[r * 29:r * 29 + 28, c * 29:c * 29 + 28] = 1 - images[i]
    fig, axes = figure(width=width, height=width * nrows / ncols)
    ax = axes[0, 0]
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.axis("off")
    return fig



def posterior_clouds(samples: dict[str, np.ndarray], image) -> Figure:
    """For one image (left), draws of z from each guide in the two coordinates of z
    that guide is most certain about (smallest spread; the others sit near the prior),
    each centred and scaled to unit spread: the shape of each guide's posterior where
    the image informs it (the two models' codes live in different spaces)."""
    names = list(samples)
    fig, axes = figure(len(names) + 1, width=COLUMN_INCHES, height=3.0,
                       width_ratios=[1] + [2] * len(names))
    axes[0, 0].imshow(np.asarray(image).reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
    axes[0, 0].axis("off")
    for i, name in enumerate(names):
        z = np.asarray(samples[name])
        dims = np.argsort(z.std(0))[:2]
        pts = (z[:, dims] - z[:, dims].mean(0)) / z[:, dims].std(0)
        ax = axes[0, i + 1]
        ax.scatter(pts[:, 0], pts[:, 1], s=3, alpha=0.35, color=COLORS[i],
                   rasterized=True, linewidths=0)
        ax.set_title(name)
        ax.set_xlabel(f"z[{dims[0]}], standardised")
        ax.set_ylabel(f"z[{dims[1]}], standardised")
        ax.set_xlim(-4.5, 4.5)
        ax.set_ylim(-4.5, 4.5)
        ax.set_aspect("equal")
    return fig
