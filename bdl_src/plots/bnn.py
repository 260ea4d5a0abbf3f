"""Figures for chapter 2: the Bayesian neural network and its deterministic twin.

Every function takes plain arrays or tensors and returns a ``matplotlib.figure.Figure``.
Results of several networks come as a dict ``{name: value}``; the first is drawn in the
palette's first colour, the second in its second.
"""

from __future__ import annotations

import numpy as np

from bdl_src import metrics
from bdl_src.plots.common import COLORS, figure


def loss_curves(bnn_losses, num_data: int, twin_losses, steps_per_epoch: int):
    """Left: the BNN's loss (negative ELBO) per training image, every step. Right: the
    twin's cross-entropy per step. Both with a running mean over one epoch."""
    fig, axes = figure(2, 1, width=7.5, height=3.0)
    panels = [(np.asarray(bnn_losses) / num_data,
               "negative ELBO / training image (nats)", "Bayesian network", COLORS[0]),
              (np.asarray(twin_losses), "cross-entropy (nats)", "deterministic twin",
               COLORS[1])]
    for ax, (loss, ylabel, title, color) in zip(axes[0], panels):
        epochs = np.arange(1, len(loss) + 1) / steps_per_epoch
        ax.plot(epochs, loss, color=color, alpha=0.35, lw=0.8, label="per step")
        k = min(steps_per_epoch, len(loss))
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(epochs[k - 1:], smooth, color=color, lw=1.8, label="mean over an epoch")
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend()
    return fig


def reliability_diagrams(probs: dict, labels, num_bins: int = 15):
    """One reliability diagram per network: accuracy against confidence in each
    confidence bin (bars), the diagonal of perfect calibration, and the share of inputs
    per bin (bottom strip, log scale). ECE in the title."""
    fig, axes = figure(len(probs), 2, width=7.5, height=4.4, sharex=True,
                       gridspec_kw={"height_ratios": [3, 1]})
    for i, (name, p) in enumerate(probs.items()):
        r = metrics.reliability(p, labels, num_bins)
        e = metrics.ece(p, labels, num_bins)
        left, width = r["edges"][:-1], np.diff(r["edges"])
        ax = axes[0, i]
        ax.bar(left, np.nan_to_num(r["accuracy"]), width=width, align="edge",
               color=COLORS[i], alpha=0.8, edgecolor="white", label="accuracy")
        gap = np.nan_to_num(r["confidence"] - r["accuracy"])
        ax.bar(left, gap, bottom=np.nan_to_num(r["accuracy"]), width=width,
               align="edge", color="none", edgecolor=COLORS[3], hatch="///", lw=0.6,
               label="gap to confidence")
        ax.plot([0, 1], [0, 1], color="0.3", ls="--", lw=1, label="perfect calibration")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{name}: ECE = {100 * e:.2f} %")
        ax.set_ylabel("accuracy in bin")
        if i == 0:
            ax.legend(loc="upper left", fontsize=8)
        share = r["count"] / r["count"].sum()
        axes[1, i].bar(left, share, width=width, align="edge", color=COLORS[i],
                       alpha=0.8)
        axes[1, i].set_yscale("log")
        axes[1, i].set_ylim(5e-5, 1.5)
        axes[1, i].set_xlabel("confidence (top class probability)")
        axes[1, i].set_ylabel("share")
    return fig


def sample_probabilities(images, sample_probs, twin_probs, labels, num_shown: int = 10):
    """For each image (row): the image, then the class probabilities under
    ``num_shown`` posterior samples (dots), their mean (bars, the posterior predictive)
    and the twin's probabilities (black ticks).

    ``images`` (K, 784); ``sample_probs`` (S, K, 10); ``twin_probs`` (K, 10);
    ``labels`` (K,).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    sp, tp = np.asarray(sample_probs), np.asarray(twin_probs)
    k = len(images)
    fig, axes = figure(2, k, width=7.5, height=1.35 * k + 0.4,
                       gridspec_kw={"width_ratios": [1, 6]})
    classes = np.arange(sp.shape[-1])
    for row in range(k):
        ax_img, ax = axes[row]
        ax_img.imshow(images[row].reshape(28, 28), cmap="gray_r", vmin=0, vmax=1)
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_ylabel(f"label {labels[row]}", fontsize=9)
        ax.bar(classes, sp[:, row].mean(0), color=COLORS[0], alpha=0.3,
               label="posterior predictive (mean)")
        jitter = np.linspace(-0.3, 0.3, min(num_shown, len(sp)))
        for s in range(min(num_shown, len(sp))):
            ax.scatter(classes + jitter[s], sp[s, row], s=9, color=COLORS[0],
                       label="one posterior sample" if s == 0 else None, zorder=3)
        ax.scatter(classes, tp[row], marker="_", s=260, lw=2, color="black",
                   label="deterministic twin", zorder=4)
        ax.set_ylim(-0.03, 1.03)
        ax.set_xticks(classes)
        ax.set_ylabel("p(class)")
        if row == 0:
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, 1.45), ncols=3,
                      fontsize=8)
        if row < k - 1:
            ax.set_xticklabels([])
        else:
            ax.set_xlabel("digit")
    return fig


def uncertainty_histograms(panels: dict, num_bins: int = 40):
    """One panel per score: histograms of the score on MNIST test and Fashion-MNIST.

    ``panels``: ``{title: (score_mnist, score_fashion)}``; a shared log-spaced x axis
    would hide zeros, so scores are shown on a linear axis with a log count axis.
    """
    fig, axes = figure(len(panels), 1, width=7.5, height=2.8)
    for ax, (title, (s_in, s_out)) in zip(axes[0], panels.items()):
        s_in, s_out = np.asarray(s_in), np.asarray(s_out)
        hi = max(s_in.max(), s_out.max())
        bins = np.linspace(0, hi, num_bins + 1)
        ax.hist(s_in, bins=bins, color=COLORS[0], alpha=0.6, label="MNIST test")
        ax.hist(s_out, bins=bins, color=COLORS[3], alpha=0.6,
                label="Fashion-MNIST test")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("nats")
    axes[0, 0].set_ylabel("images")
    axes[0, 0].legend(loc="upper right", fontsize=8)
    return fig


def roc_curves(curves: dict):
    """ROC curves for telling Fashion-MNIST from MNIST test images by an uncertainty
    score. ``curves``: ``{label: (fpr, tpr, auroc)}``."""
    fig, axes = figure(1, 1, width=4.6, height=4.0)
    ax = axes[0, 0]
    styles = ["-", "--", ":", "-."]
    for i, (label, (fpr, tpr, area)) in enumerate(curves.items()):
        ax.plot(fpr, tpr, ls=styles[i % len(styles)], lw=1.8,
                color=COLORS[[0, 2, 1, 4][i % 4]], label=f"{label} (AUROC {area:.3f})")
    ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("MNIST images flagged (false-positive rate)")
    ax.set_ylabel("Fashion images flagged (true-positive rate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8)
    return fig


def image_rows(rows: dict, ncols: int = 8):
    """Rows of images with a title over each: ``rows`` is
    ``{row title: (images (K, 784), per-image titles)}``."""
    fig, axes = figure(ncols, len(rows), width=7.5, height=1.25 * len(rows) * 1.25)
    for r, (row_title, (images, titles)) in enumerate(rows.items()):
        images = np.asarray(images).reshape(-1, 28, 28)
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c], cmap="gray_r", vmin=0, vmax=1)
                ax.set_title(titles[c], fontsize=7.5)
        axes[r, 0].set_ylabel(row_title, fontsize=9)
    return fig


def rejection_curves(fractions, curves: dict):
    """Accuracy on the images a network keeps, against the share it refuses (most
    uncertain first). ``curves``: ``{label: accuracies}``."""
    fig, axes = figure(1, 1, width=6.0, height=3.4)
    ax = axes[0, 0]
    fractions = 100 * np.asarray(fractions)
    styles = ["-", "--", ":", "-."]
    for i, (label, acc) in enumerate(curves.items()):
        ax.plot(fractions, 100 * np.asarray(acc), ls=styles[i % len(styles)], lw=1.8,
                color=COLORS[[0, 2, 1, 4][i % 4]], label=label)
    ax.set_xlabel("share of test images handed to a human (%)")
    ax.set_ylabel("accuracy on the rest (%)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def pixel_maps(maps: dict):
    """Images of 784 numbers each, side by side, each with its own colour bar:
    ``maps`` is ``{title: (784,) values}``."""
    fig, axes = figure(len(maps), 1, width=8.0, height=3.0)
    for ax, (title, values) in zip(axes[0], maps.items()):
        im = ax.imshow(np.asarray(values).reshape(28, 28), cmap="viridis")
        ax.set_title(title, fontsize=8.5, wrap=True)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig
