"""Figures for chapter 1 (Bayesian linear regression)."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure

from bdl_src.plots.common import COLORS, COLUMN_INCHES, figure

PARAMS = ("intercept", "slope", "sigma")


# One colour per way of computing the posterior, in every figure of chapter 1.
GUIDE_COLORS = {"exact": "black", "AutoMultivariateNormal": COLORS[4],
                "AutoNormal": COLORS[1], "NUTS": COLORS[2], "mean-field": COLORS[0],
                "hand-written": COLORS[0]}


def guide_color(label: str) -> str:
    """The colour of the posterior a legend label names ("AutoNormal (mean-field)" is
    AutoNormal's): the first key of ``GUIDE_COLORS`` in the label."""
    for key, color in GUIDE_COLORS.items():
        if key in label:
            return color
    raise KeyError(f"no colour for {label!r}; add it to GUIDE_COLORS")


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _robust_ylim(y, pad: float = 0.25) -> tuple[float, float]:
    lo, hi = np.quantile(_np(y), [0.02, 0.98])
    return lo - pad * (hi - lo), hi + pad * (hi - lo)


def prior_predictive(x_grid, intercepts, slopes, obs, x, y) -> Figure:
    """Lines drawn from the prior, prior-predictive observations, and the real data."""
    fig, axes = figure(2, width=COLUMN_INCHES, height=3.4, sharey=True)
    ax1, ax2 = axes[0]
    xg = _np(x_grid)
    for a, b in zip(_np(intercepts), _np(slopes)):
        ax1.plot(xg, a + b * xg, color=COLORS[0], alpha=0.25, lw=1)
    ax1.set_title("Regression lines drawn from the prior")
    lo, hi = np.quantile(_np(obs), [0.05, 0.95], axis=0)
    ax2.fill_between(xg, lo, hi, color=COLORS[0], alpha=0.25,
                     label="prior predictive 90 % band")
    ax2.scatter(_np(x), _np(y), s=8, color=COLORS[3], label="observed data")
    ax2.set_title("Prior predictive vs the data")
    ax2.legend(loc="upper left")
    for ax in axes[0]:
        ax.set_xlabel("x")
    ax1.set_ylabel("y")
    return fig


def elbo_curves(losses: dict[str, list[float]], num_data: int) -> Figure:
    """ELBO per data point against the SVI step, one line per guide."""
    fig, axes = figure(1, width=6.4, height=3.2)
    ax = axes[0, 0]
    styles = ["-", "--", ":"]
    everything = []
    for i, (label, values) in enumerate(losses.items()):
        elbo = -np.asarray(values) / num_data
        steps = np.arange(1, len(elbo) + 1)
        ax.plot(steps, elbo, label=label, lw=1.2, ls=styles[i % 3],
                color=guide_color(label))
        everything.append(elbo)
    everything = np.concatenate(everything)
    top = np.quantile(everything, 0.99)
    bottom = np.quantile(everything, 0.03)
    ax.set_ylim(bottom - 0.1 * (top - bottom), top + 0.1 * (top - bottom))
    ax.set_xscale("log")
    ax.set_xlabel("SVI step (log scale)")
    ax.set_ylabel("ELBO per data point (nats)")
    ax.legend()
    return fig


def posterior_marginals(samples: dict[str, dict], exact: dict | None,
                        truth: dict) -> Figure:
    """Histogram of each guide's samples per parameter, the exact posterior density and
    the true value. ``exact`` maps parameter -> (grid, density)."""
    fig, axes = figure(3, width=COLUMN_INCHES, height=3.3)
    for ax, name in zip(axes[0], PARAMS):
        for i, (label, s) in enumerate(samples.items()):
            ax.hist(_np(s[name]), bins=60, density=True, histtype="step", lw=1.5,
                    color=guide_color(label), label=label)
        if exact is not None:
            grid, dens = exact[name]
            ax.plot(_np(grid), _np(dens), color="black", lw=1.2, ls="--", label="exact")
        ax.axvline(truth[name], color="0.55", lw=2.5, alpha=0.8, label="true value")
        ax.set_title(name)
        ax.set_yticks([])
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    return fig


def predictive_bands(ax, x_grid, obs, x, y, x_test=None, y_test=None, title="") -> None:
    """Median and 50 % / 90 % posterior predictive bands over the data, on ``ax``."""
    xg = _np(x_grid)
    q = np.quantile(_np(obs), [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    ax.fill_between(xg, q[0], q[4], color=COLORS[0], alpha=0.2, label="90 % band")
    ax.fill_between(xg, q[1], q[3], color=COLORS[0], alpha=0.35, label="50 % band")
    ax.plot(xg, q[2], color=COLORS[0], lw=1.5, label="median")
    if x_test is not None:  # at most 300 of them, or they hide the bands
        ax.scatter(_np(x_test)[:300], _np(y_test)[:300], s=4, color="0.5",
                   label="held-out points")
    ax.scatter(_np(x), _np(y), s=9, color=COLORS[3], label="training points")
    ax.set_ylim(*_robust_ylim(np.concatenate([_np(y), _np(y_test)])
                              if y_test is not None else y))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title)


def predictive_panels(panels: list[dict]) -> Figure:
    """Side-by-side ``predictive_bands`` panels; each dict holds its keyword
    arguments."""
    fig, axes = figure(len(panels), width=6.4 if len(panels) == 1 else COLUMN_INCHES,
                       height=3.6, sharey=True)
    for ax, kw in zip(axes[0], panels):
        predictive_bands(ax, **kw)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    return fig


def calibration(curves: dict[str, tuple]) -> Figure:
    """Observed coverage of held-out points against the nominal level of the central
    predictive interval; a calibrated model follows the diagonal."""
    fig, axes = figure(1, width=4.4, height=3.8)
    ax = axes[0, 0]
    ax.plot([0, 1], [0, 1], color="black", lw=1, ls="--", label="perfect calibration")
    for i, (label, (levels, cover)) in enumerate(curves.items()):
        ax.plot(_np(levels), _np(cover), marker="o", ms=3, color=COLORS[i], label=label)
    ax.set_xlabel("nominal level of the central interval")
    ax.set_ylabel("share of held-out points inside")
    ax.set_aspect("equal")
    ax.legend(fontsize=9, loc="lower right")
    return fig


def correlated_posterior(samples: dict[str, dict], x_grid, x,
                         num_points: int = 1500) -> Figure:
    """Left: draws of (intercept, slope) from each posterior (the first one is the
    reference, drawn in black). Right: the central 90 % band of the regression line
    a + b x under each, minus the reference's mean line, over ``x_grid`` (which may
    reach beyond the data ``x``: the intercept is the line at x = 0)."""
    fig, axes = figure(2, width=COLUMN_INCHES, height=3.6)
    ax1, ax2 = axes[0]
    xg = _np(x_grid)
    ax2.axvspan(float(_np(x).min()), float(_np(x).max()), color="0.9", zorder=0,
                label="range of the data")
    center = None
    for i, (label, s) in enumerate(samples.items()):
        color = guide_color(label)
        a, b = _np(s["intercept"]), _np(s["slope"])
        ax1.scatter(a[:num_points], b[:num_points], s=2, alpha=0.3, color=color,
                    rasterized=True)
        lines = a[:, None] + b[:, None] * xg  # (S, G)
        center = lines.mean(0) if center is None else center
        lo, hi = np.quantile(lines - center, [0.05, 0.95], axis=0)
        style = dict(color=color, lw=1.5, ls="--" if i == 0 else "-")
        ax2.plot(xg, lo, label=label, **style)
        ax2.plot(xg, hi, **style)
    ax1.set_xlabel("intercept")
    ax1.set_ylabel("slope")
    ax1.set_title("Posterior draws")
    ax2.axvline(0.0, color="0.5", lw=0.8)
    ax2.set_xlabel("x")
    ax2.set_ylabel("line minus the exact mean line")
    ax2.set_title("90 % band of the line a + b x")
    handles, labels = ax2.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels))
    return fig
