"""Figures for chapter 2: the Bayesian neural network and its deterministic twin.

Every function takes plain arrays or tensors and returns a ``matplotlib.figure.Figure``.
Results of several networks come as a dict ``{name: value}``; the first is drawn in the
palette's first colour, the second in its second.
"""

from __future__ import annotations

import numpy as np

from bdl_src.plots.common import COLORS, COLUMN_INCHES, figure


def loss_curves(bnn_losses, num_data: int, twin_losses, steps_per_epoch: int,
                twin_steps_per_epoch: int | None = None):
    """Left: the BNN's loss (negative ELBO) per training image, every step. Right: the
    twin's cross-entropy per step. Both with a running mean over one epoch."""
    fig, axes = figure(2, 1, width=COLUMN_INCHES, height=3.0)
    panels = [(np.asarray(bnn_losses) / num_data,
               "negative ELBO / training image (nats)", "Bayesian network", COLORS[0],
               steps_per_epoch),
              (np.asarray(twin_losses), "cross-entropy (nats)", "deterministic twin",
               COLORS[7], twin_steps_per_epoch or steps_per_epoch)]
    for ax, (loss, ylabel, title, color, steps_per_epoch) in zip(axes[0], panels):
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
    fig, axes = figure(2, k, width=COLUMN_INCHES, height=1.35 * k + 0.4,
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
                      fontsize=9)
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
    fig, axes = figure(len(panels), 1, width=COLUMN_INCHES, height=2.8)
    for ax, (title, (s_in, s_out)) in zip(axes[0], panels.items()):
        s_in, s_out = np.asarray(s_in), np.asarray(s_out)
        hi = max(s_in.max(), s_out.max())
        bins = np.linspace(0, hi, num_bins + 1)
        # data sets in grey and sky blue: no method's colour
        ax.hist(s_in, bins=bins, color="0.45", alpha=0.6, label="MNIST test")
        ax.hist(s_out, bins=bins, color=COLORS[5], alpha=0.7,
                label="Fashion-MNIST test")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("nats")
    axes[0, 0].set_ylabel("images")
    axes[0, 0].legend(loc="upper right", fontsize=9)
    return fig


def roc_curves(curves: dict):
    """ROC curves for telling Fashion-MNIST from MNIST test images by an uncertainty
    score. ``curves``: ``{label: (fpr, tpr, auroc)}``."""
    fig, axes = figure(1, 1, width=4.6, height=4.0)
    ax = axes[0, 0]
    styles = ["-", "--", ":", "-."]
    for i, (label, (fpr, tpr, area)) in enumerate(curves.items()):
        method = "BNN" if label.startswith("BNN") else "deterministic"
        ax.plot(fpr, tpr, ls=styles[i % len(styles)], lw=1.8,
                color=METHOD_STYLES[method][0], label=f"{label} (AUROC {area:.3f})")
    ax.plot([0, 1], [0, 1], color="0.5", lw=0.8, ls=":")
    ax.set_xlabel("MNIST images flagged (false-positive rate)")
    ax.set_ylabel("Fashion images flagged (true-positive rate)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=9)
    return fig


def image_rows(rows: dict, ncols: int = 8):
    """Rows of images with a title over each: ``rows`` is
    ``{row title: (images (K, 784), per-image titles)}``."""
    fig, axes = figure(ncols, len(rows), width=COLUMN_INCHES,
                       height=1.25 * len(rows) * 1.25)
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
                ax.set_title(titles[c], fontsize=9)
        axes[r, 0].set_ylabel(row_title, fontsize=9)
    return fig


def pixel_maps(maps: dict):
    """Images of 784 numbers each, two to a row, each with its own colour bar:
    ``maps`` is ``{title: (784,) values}``."""
    nrows = -(-len(maps) // 2)
    fig, axes = figure(2, nrows, width=COLUMN_INCHES * 0.8, height=2.6 * nrows)
    for ax in axes.flat[len(maps):]:
        ax.set_visible(False)
    for ax, (title, values) in zip(axes.flat, maps.items()):
        im = ax.imshow(np.asarray(values).reshape(28, 28), cmap="viridis")
        ax.set_title(title)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        fig.colorbar(im, ax=ax, shrink=0.8)
    return fig


# --- the comparison with the baselines ----------------------------------------

# One colour (Okabe & Ito, colour-blind-safe) and one line style per method, on every
# figure of the chapter.
METHOD_STYLES = {
    "BNN": (COLORS[0], "-"),
    "deterministic": (COLORS[7], ":"),
    "temperature scaling": (COLORS[1], "--"),
    "MC dropout": (COLORS[2], "-."),
    "deep ensemble": (COLORS[3], (0, (5, 1))),
    "last-layer Laplace": (COLORS[4], (0, (3, 1, 1, 1, 1, 1))),
}


def reliability_grid(bins: dict, ncols: int = 3):
    """Reliability diagrams side by side from stored bins: ``bins`` is ``{method:
    {"confidence": [...], "accuracy": [...], "count": [...]}}`` (15 equal-width bins).
    Bars: accuracy per bin in the method's colour; hatched: the gap to the bin's mean
    confidence; dashed: perfect calibration. ECE in each title."""
    nrows = -(-len(bins) // ncols)
    fig, axes = figure(ncols, nrows, width=COLUMN_INCHES, height=2.5 * nrows + 0.3,
                       sharex=True, sharey=True)
    for ax, (method, r) in zip(axes.flat, bins.items()):
        conf, acc = np.asarray(r["confidence"]), np.asarray(r["accuracy"])
        count = np.asarray(r["count"], dtype=float)
        edges = np.linspace(0, 1, len(count) + 1)
        keep = count > 0
        e = float(np.sum(count[keep] / count.sum() * np.abs(acc[keep] - conf[keep])))
        color = METHOD_STYLES.get(method, (COLORS[0], "-"))[0]
        ax.bar(edges[:-1], np.nan_to_num(acc), width=np.diff(edges), align="edge",
               color=color, alpha=0.55, edgecolor="white")
        ax.bar(edges[:-1], np.nan_to_num(conf - acc), bottom=np.nan_to_num(acc),
               width=np.diff(edges), align="edge", color="none", edgecolor="0.35",
               hatch="///", lw=0.6)
        ax.plot([0, 1], [0, 1], color="0.3", ls="--", lw=1)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_title(f"{method}\nECE = {100 * e:.2f} %", fontsize=9)
    for ax in axes.flat[len(bins):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("confidence")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy in bin")
    return fig


def _band(ax, x, runs, method, label=None):
    """Mean over seeds (line) and their range (band) of ``runs`` (seeds, len(x))."""
    color, style = METHOD_STYLES.get(method, (COLORS[0], "-"))
    runs = np.asarray(runs, dtype=float)
    ax.plot(x, runs.mean(0), color=color, ls=style, lw=1.8, label=label)
    if len(runs) > 1:
        ax.fill_between(x, runs.min(0), runs.max(0), color=color, alpha=0.15, lw=0)


def refusal_by_method(fractions, curves: dict):
    """Accuracy on the test digits a method keeps against the share it refuses (most
    uncertain by predictive entropy first). ``curves``: ``{method: [accuracies of each
    seed]}``; line: mean over seeds, band: their range."""
    fig, axes = figure(1, 1, width=6.4, height=3.6)
    ax = axes[0, 0]
    for method, runs in curves.items():
        _band(ax, 100 * np.asarray(fractions), 100 * np.asarray(runs), method, method)
    ax.set_xlabel("share of test digits handed to a human (%)")
    ax.set_ylabel("accuracy on the rest (%)")
    ax.legend(loc="lower right", fontsize=9)
    return fig


def shift_curves(angles, sweeps: dict):
    """Accuracy, ECE and mean predictive entropy of every method against the angle by
    which the test digits are rotated. ``sweeps``: ``{method: [per seed: {angle:
    {"accuracy", "ece", "entropy"}}]}``; line: mean over seeds, band: their range."""
    fig, axes = figure(3, 1, width=COLUMN_INCHES, height=3.2)
    panels = [("accuracy", 100, "accuracy (%)"), ("ece", 100, "ECE (%)"),
              ("entropy", 1, "mean predictive entropy (nats)")]
    for ax, (key, factor, ylabel) in zip(axes[0], panels):
        for method, runs in sweeps.items():
            values = [[factor * run[str(a)][key] for a in angles] for run in runs]
            _band(ax, angles, values, method, method)
        ax.set_xlabel("rotation (degrees)")
        ax.set_ylabel(ylabel)
        ax.set_xticks(list(angles)[::2])
    axes[0, 2].axhline(np.log(10), color="0.5", lw=0.8, ls=":")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center",
               ncols=3, fontsize=9)
    return fig


def prior_predictive(panels: dict):
    """What networks drawn from each prior predict on digits: one row per prior
    (``panels``: ``{title: sample_probs (S, N, 10)}``). Left: the confidence (top
    probability) of every network on every image; middle: the entropy of each
    network's prediction; right: the share of the images each network assigns to each
    digit (one dot per network)."""
    fig, axes = figure(3, len(panels), width=COLUMN_INCHES,
                       height=2.3 * len(panels) + 0.2)
    for row, (title, sp) in enumerate(panels.items()):
        sp = np.asarray(sp)
        conf = sp.max(-1).ravel()
        ent = -(sp * np.log(np.clip(sp, 1e-12, None))).sum(-1).ravel()
        share = np.stack([np.bincount(s.argmax(-1), minlength=sp.shape[-1])
                          for s in sp]) / sp.shape[1]  # (S, 10)
        color = ["0.45", COLORS[0]][row % 2]
        axes[row, 0].hist(conf, bins=np.linspace(0.1, 1, 31), color=color, alpha=0.8)
        axes[row, 0].set_ylabel(title, fontsize=9)
        axes[row, 1].hist(ent, bins=np.linspace(0, np.log(10), 31), color=color,
                          alpha=0.8)
        jitter = np.random.default_rng(0).uniform(-0.25, 0.25, share.shape)
        axes[row, 2].scatter(np.arange(sp.shape[-1]) + jitter, share, s=4,
                             color=color, alpha=0.5)
        axes[row, 2].set_ylim(-0.03, 1.03)
        axes[row, 2].set_xticks(range(sp.shape[-1]))
        for ax in axes[row, :2]:
            ax.set_yticks([])
    axes[-1, 0].set_xlabel("confidence")
    axes[-1, 1].set_xlabel("entropy (nats)")
    axes[-1, 2].set_xlabel("predicted digit")
    axes[0, 2].set_title("share of images per digit", fontsize=9)
    axes[0, 0].set_title("confidence", fontsize=9)
    axes[0, 1].set_title("entropy of a network's prediction", fontsize=9)
    return fig
