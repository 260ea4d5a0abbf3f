"""Figures of chapter 4 (the semi-supervised VAE on MNIST). Every function returns a
Figure."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bdl_src.plots.common import COLORS, figure

# One colour per number of labels (training curves), none shared with the models'.
RUN_COLORS = ["#CC79A7", "#56B4E9", "#000000", "#999999"]

# One colour and marker per model, in every figure of the chapter.
STYLE = {"M1+M2": (COLORS[0], "o", "-"),
         "M1-code classifier": (COLORS[2], "^", ":"),
         "labels-only MLP": (COLORS[1], "s", "--")}


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
    for (label, (losses, per_epoch)), color in zip(runs.items(), RUN_COLORS):
        smooth = _smooth(losses, window)
        epochs = (np.arange(len(smooth)) + window) / per_epoch
        ax.plot(epochs, smooth, color=color, label=label)
        low = min(low, smooth.min())
    ax.set_xlabel("epoch (passes over the unlabelled images)")
    ax.set_ylabel("loss (nats per image)")
    ax.set_ylim(low - 5, low + 60)  # the first steps start far above the rest
    ax.legend()
    return fig




def accuracy_curves(runs: dict) -> Figure:
    """Validation accuracy of q(y|x) after every epoch, one curve per run: ``runs`` maps
    (number of labels, draw) to a list of accuracies. One colour per number of labels,
    in the order of ``loss_curves``; one line style per draw."""
    fig, axes = figure(width=6.4, height=3.4)
    ax = axes[0, 0]
    numbers = list(dict.fromkeys(n for n, _ in runs))
    several = {n for n, draw in runs if draw > 0}
    for (n, draw), acc in runs.items():
        label = f"{n} labels" + (f", draw {draw + 1}" if n in several else "")
        ax.plot(np.arange(1, len(acc) + 1), 100 * np.asarray(acc), marker="o", ms=3,
                color=RUN_COLORS[numbers.index(n) % len(RUN_COLORS)],
                ls=["-", "--", ":", "-."][draw % 4], label=label)
    ax.set_xlabel("epoch of M2")
    ax.set_ylabel("validation accuracy (%)")
    ax.legend(fontsize=9, ncol=2)
    return fig


def accuracy_vs_labels(num_labels, methods: dict, published: dict | None = None
                       ) -> Figure:
    """Test accuracy against the number of labels kept (log scale). ``methods`` maps a
    model's name (a key of ``STYLE``) to (means, sds) per number of labels, sd 0 where
    there is one draw; ``published`` maps a source's name to {labels: accuracy}, drawn
    as open markers."""
    fig, axes = figure(width=6.4, height=3.8)
    ax = axes[0, 0]
    n = np.asarray(num_labels)
    for name, (means, sds) in methods.items():
        color, marker, ls = STYLE[name]
        ax.errorbar(n, 100 * np.asarray(means), yerr=100 * np.asarray(sds),
                    marker=marker, ls=ls, color=color, capsize=3, label=name)
    for (name, points), marker in zip((published or {}).items(), "DPX*"):
        # a little to the left of the book's points, which would hide them
        ax.plot([x / 1.15 for x in points], [100 * a for a in points.values()],
                marker=marker,
                ls="none", mfc="none", mec=COLORS[7], ms=7, label=name)
    ax.set_xscale("log")
    ax.set_xticks(n)
    ax.set_xticklabels([str(v) for v in n])
    ax.minorticks_off()
    ax.set_xlim(n.min() / 1.4, n.max() * 1.4)
    ax.set_xlabel("labels kept (log scale)")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=9, loc="lower right")
    return fig


def reliability_diagrams(panels: dict) -> Figure:
    """One panel per run: ``panels`` maps a title to {model name: the dict of
    ``bdl_src.metrics.reliability``}; accuracy against confidence per bin, the
    diagonal being perfect calibration."""
    fig, axes = figure(ncols=len(panels), width=6.4, height=3.4, sharey=True)
    for ax, (title, models) in zip(axes[0], panels.items()):
        ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
        for name, r in models.items():
            color, marker, ls = STYLE[name]
            keep = r["count"] > 0
            ax.plot(r["confidence"][keep], r["accuracy"][keep], marker=marker, ms=4,
                    ls=ls, color=color, label=name)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("confidence (top probability)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=9, loc="upper left")
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
                    ax.set_title("style\nfrom", fontsize=9)
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
                     f"\ntrue {int(true_labels[i])}"), fontsize=9,
                     color="black" if right else COLORS[3])
    return fig
