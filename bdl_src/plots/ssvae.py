"""Figures of chapter 4 (the semi-supervised VAE on MNIST). Every function returns a
Figure."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bdl_src.plots.common import COLORS, figure


def _smooth(values, window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    kernel = np.ones(window) / window
    return np.convolve(values, kernel, mode="valid")


def loss_curves(runs: dict, window: int = 50) -> Figure:
    """The training loss per image (negative ELBO + classification loss) step by step,
    one curve per run; ``runs`` maps a label to (losses, steps_per_epoch)."""
    fig, axes = figure(width=6.4, height=3.4)
    ax = axes[0, 0]
    low = np.inf
    for (label, (losses, per_epoch)), color in zip(runs.items(), COLORS):
        smooth = _smooth(losses, window)
        epochs = (np.arange(len(smooth)) + window) / per_epoch
        ax.plot(epochs, smooth, color=color, label=label)
        low = min(low, smooth.min())
    ax.set_xlabel("epoch (passes over the unlabelled images)")
    ax.set_ylabel("loss (nats per image)")
    ax.set_ylim(low - 5, low + 60)  # the first steps start far above the rest
    ax.legend()
    return fig


def accuracy_curves(runs: dict, baselines: dict | None = None) -> Figure:
    """Test accuracy of q(y|x) after every epoch, one curve per run (``runs`` maps a
    label to a list of accuracies), each labelled-only baseline as a dashed line."""
    fig, axes = figure(width=6.4, height=3.4)
    ax = axes[0, 0]
    for i, (label, acc) in enumerate(runs.items()):
        color = COLORS[i % len(COLORS)]
        ax.plot(np.arange(1, len(acc) + 1), 100 * np.asarray(acc), marker="o", ms=3,
                color=color, label=f"SS-VAE, {label}")
        if baselines and label in baselines:
            ax.axhline(100 * baselines[label], color=color, ls="--", lw=1,
                       label=f"labelled only, {label}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8, ncol=2)
    return fig


def accuracy_vs_labels(num_labels, ssvae_acc, baseline_acc, code_baseline_acc=None
                       ) -> Figure:
    """Final test accuracy against the number of labels kept: the SS-VAE, the same
    network trained on the labels alone and, if given, a classifier on M1's code."""
    fig, axes = figure(width=5.6, height=3.6)
    ax = axes[0, 0]
    n = np.asarray(num_labels)
    curves = [("SS-VAE (M1+M2): q(y|x)", ssvae_acc, "o", "-", 6),
              ("same network, labelled images only", baseline_acc, "s", "--", -12)]
    if code_baseline_acc is not None:
        curves.insert(1, ("M1 code + classifier, labelled images only",
                          code_baseline_acc, "^", ":", -12))
    for (label, acc, marker, ls, dy), color in zip(curves, COLORS):
        acc = 100 * np.asarray(acc)
        ax.plot(n, acc, marker=marker, ls=ls, color=color, label=label)
        if dy > 0 or label.startswith("same"):
            for x, a in zip(n, acc):
                ax.annotate(f"{a:.1f}", (x, a), textcoords="offset points",
                            xytext=(0, dy), ha="center", fontsize=8, color=color)
    ax.set_xscale("log")
    ax.set_xticks(n)
    ax.set_xticklabels([str(v) for v in n])
    ax.minorticks_off()
    ax.set_xlim(n.min() / 1.6, n.max() * 1.6)
    low, high = ax.get_ylim()
    ax.set_ylim(low - 0.06 * (high - low), high)  # room for the labels under the points
    ax.set_xlabel("labels kept (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def labelled_images(images, labels, ncols: int = 10, width: float = 6.4) -> Figure:
    """Labelled images sorted by label, ``ncols`` of each: one row per label, named
    on its left."""
    images = np.asarray(images).reshape(-1, 28, 28)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = figure(ncols, nrows, width=width, height=width * nrows / ncols * 1.05)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
    for i in range(nrows):
        axes[i, 0].text(-6, 14, str(int(labels[i * ncols])), ha="right", va="center",
                        fontsize=9)
    return fig


def digit_grid(images, row_images=None, width: float = 6.4) -> Figure:
    """A grid (rows, 10, 784) of generated digits, columns labelled 0-9; with
    ``row_images`` (rows, 784) each row starts with the image its style came from."""
    images = np.asarray(images).reshape(images.shape[0], images.shape[1], 28, 28)
    nrows, ndigits = images.shape[:2]
    offset = 0 if row_images is None else 1
    ncols = ndigits + offset
    fig, axes = figure(ncols, nrows, width=width, height=width * nrows / ncols * 1.08)
    for i in range(nrows):
        for j in range(ncols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for spine in ax.spines.values():
                spine.set_visible(False)
            if offset and j == 0:
                ax.imshow(np.asarray(row_images[i]).reshape(28, 28), cmap="gray_r",
                          vmin=0, vmax=1)
                for spine in ax.spines.values():
                    spine.set_visible(True)
                    spine.set_color(COLORS[0])
                if i == 0:
                    ax.set_title("style\nfrom", fontsize=8)
            else:
                ax.imshow(images[i, j - offset], cmap="gray_r", vmin=0, vmax=1)
                if i == 0:
                    ax.set_title(str(j - offset), fontsize=9)
    return fig


def inferred_labels(images, probs, true_labels, ncols: int = 8,
                    width: float = 6.4) -> Figure:
    """Images whose label was removed, titled with the digit q(y|x) infers and its
    probability; a title in the accent colour marks a wrong guess."""
    images = np.asarray(images).reshape(-1, 28, 28)
    probs = np.asarray(probs)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = figure(ncols, nrows, width=width, height=width * nrows / ncols * 1.3)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        ax.imshow(images[i], cmap="gray_r", vmin=0, vmax=1)
        guess = int(probs[i].argmax())
        right = guess == int(true_labels[i])
        ax.set_title(f"{guess} ({100 * probs[i, guess]:.0f}%)" + ("" if right else
                     f"\ntrue {int(true_labels[i])}"), fontsize=8,
                     color="black" if right else COLORS[3])
    return fig
