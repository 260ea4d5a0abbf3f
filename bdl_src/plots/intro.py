"""The figure of the introduction: the four steps of Bayesian modeling."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from bdl_src.plots.common import COLORS, COLUMN_INCHES, figure

# Lines of at most 16 characters: a box is a fifth of the column, about 95 pt at 9 pt.
STEPS = [
    ("1. Model", "priors and\nlikelihood\n`pyro.sample`\n`pyro.plate`"),
    ("2. Guide", "approximate\nposterior\n`pyro.param`\nautoguides"),
    ("3. Inference", "maximise\nthe ELBO\n`SVI`\n`Trace_ELBO`"),
    ("4. Evaluation", "posterior\npredictive\nchecks on\nnew data"),
]


def four_steps() -> Figure:
    """Four boxes in a row with arrows, and a loop back from evaluation to the model."""
    fig, axes = figure(1, width=COLUMN_INCHES, height=3.0)
    ax = axes[0, 0]
    ax.set_xlim(0, 4)
    ax.set_ylim(-0.55, 1.12)
    ax.axis("off")
    for i, (title, text) in enumerate(STEPS):
        ax.add_patch(FancyBboxPatch((i + 0.06, 0.12), 0.78, 0.96,
                                    boxstyle="round,pad=0.02", fc=COLORS[i] + "33",
                                    ec=COLORS[i], lw=1.5))
        ax.text(i + 0.45, 0.93, title, ha="center", va="center", weight="bold")
        ax.text(i + 0.45, 0.47, text.replace("`", ""), ha="center", va="center",
                fontsize=9, linespacing=1.3)
        if i < 3:
            ax.add_patch(FancyArrowPatch((i + 0.86, 0.5), (i + 1.04, 0.5),
                                         arrowstyle="-|>", mutation_scale=14,
                                         color="0.3"))
    ax.add_patch(FancyArrowPatch((3.45, 0.1), (0.45, 0.1),
                                 connectionstyle="arc3,rad=-0.2",
                                 arrowstyle="-|>", mutation_scale=14, color=COLORS[3]))
    ax.text(1.95, -0.42, "the model fails a check: rewrite it", ha="center",
            color=COLORS[3], fontsize=9)
    return fig
