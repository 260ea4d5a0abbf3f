"""Figures of the appendix "Scaling up". Every function returns a Figure."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from bdl_src.plots.common import COLORS, COLUMN_INCHES, figure


def throughput(runs: list[dict]) -> Figure:
    """Left: images per second of SVI for each run (``measure``'s dicts); right: the
    negative ELBO per training image, epoch by epoch, of each run."""
    fig, axes = figure(ncols=2, width=COLUMN_INCHES, height=3.0)
    left, right = axes[0]
    labels = [f"{r['processes']} process{'es' if r['processes'] > 1 else ''}\n"
              f"× {r['threads']} thread{'s' if r['threads'] > 1 else ''}" for r in runs]
    bars = left.bar(labels, [r["images_per_second"] for r in runs],
                    color=COLORS[:len(runs)], width=0.6)
    left.bar_label(bars, fmt="{:,.0f}", padding=2)
    left.set_ylabel("images per second (SVI)")
    left.margins(y=0.15)
    left.grid(axis="x", visible=False)
    for run, label, color in zip(runs, labels, COLORS):
        curve = -np.asarray(run["train_elbo"])
        right.plot(np.arange(1, len(curve) + 1), curve, marker="o", color=color,
                   label=label.replace("\n", " "))
    right.set_xlabel("epoch")
    right.set_ylabel("negative ELBO (nats per image)")
    right.set_xticks(np.arange(1, len(runs[0]["train_elbo"]) + 1))
    right.legend()
    return fig
