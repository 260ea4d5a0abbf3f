"""Scores for classifiers that output probabilities, and for their uncertainty.

Inputs are torch tensors: ``probs`` (N, C) predictive class probabilities (rows sum to
1), ``sample_probs`` (S, N, C) the probabilities under S posterior samples, ``labels``
(N,) integer classes. Scalars come back as Python floats. Entropies are in nats. ROC
curves and their areas come from scikit-learn.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import roc_auc_score, roc_curve

EPS = 1e-12  # floor for probabilities inside logarithms


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of inputs whose most probable class is the label."""
    return (probs.argmax(-1) == labels).double().mean().item()


def nll(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean negative log-probability of the labels, -1/N sum_i log p(y_i | x_i)."""
    p = probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    return -p.double().clamp_min(EPS).log().mean().item()


def reliability(probs: torch.Tensor, labels: torch.Tensor, num_bins: int = 15) -> dict:
    """Group inputs by confidence (the top probability) into ``num_bins`` equal-width
    bins of [0, 1]; per bin return the mean confidence, the accuracy and the count
    (empty bins give NaN confidence and accuracy)."""
    conf, pred = probs.double().max(-1)
    correct = (pred == labels).double()
    # Bin b holds confidences in (b/num_bins, (b+1)/num_bins]; a confidence of 0 joins
    # bin 0.
    bins = (torch.ceil(conf * num_bins).long() - 1).clamp(0, num_bins - 1)
    count = torch.bincount(bins, minlength=num_bins).double()
    conf_sum = torch.bincount(bins, weights=conf, minlength=num_bins)
    correct_sum = torch.bincount(bins, weights=correct, minlength=num_bins)
    return {"edges": torch.linspace(0, 1, num_bins + 1).numpy(),
            "confidence": (conf_sum / count).numpy(),
            "accuracy": (correct_sum / count).numpy(),
            "count": count.long().numpy()}


def ece(probs: torch.Tensor, labels: torch.Tensor, num_bins: int = 15) -> float:
    """Expected calibration error: sum over confidence bins of
    (bin share of inputs) * |bin accuracy - bin mean confidence|."""
    r = reliability(probs, labels, num_bins)
    keep = r["count"] > 0
    share = r["count"][keep] / r["count"].sum()
    return float(np.sum(share * np.abs(r["accuracy"][keep] - r["confidence"][keep])))


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Entropy -sum_c p_c log p_c of each row of ``probs`` (..., C), in nats."""
    p = probs.double()
    return -(p * p.clamp_min(EPS).log()).sum(-1)


def predictive_entropy(sample_probs: torch.Tensor) -> torch.Tensor:
    """Entropy of the predictive distribution, per input (N,): total uncertainty.

    ``sample_probs`` (S, N, C) are averaged over samples first (the posterior
    predictive); a single network's probabilities (N, C) are used as they are."""
    if sample_probs.dim() == 2:
        return entropy(sample_probs)
    return entropy(sample_probs.mean(0))


def mutual_information(sample_probs: torch.Tensor) -> torch.Tensor:
    """Mutual information between the label and the weights, I[y; W | x] =
    H[mean_s p_s] - mean_s H[p_s], per input (N,): the epistemic part of the entropy,
    zero when every sample agrees."""
    return entropy(sample_probs.mean(0)) - entropy(sample_probs).mean(0)


def auroc(score_in: torch.Tensor, score_out: torch.Tensor) -> float:
    """Area under the ROC curve for telling out-of-distribution inputs (positives) from
    in-distribution ones by a score (higher = more likely out): 0.5 is chance, 1 is
    perfect."""
    y, s = _stack(score_in, score_out)
    return float(roc_auc_score(y, s))


def roc(score_in: torch.Tensor,
        score_out: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates of the ROC curve (see ``auroc``)."""
    y, s = _stack(score_in, score_out)
    fpr, tpr, _ = roc_curve(y, s)
    return fpr, tpr


def _stack(score_in, score_out):
    s = np.concatenate([np.asarray(score_in, dtype=np.float64),
                        np.asarray(score_out, dtype=np.float64)])
    y = np.concatenate([np.zeros(len(score_in)), np.ones(len(score_out))])
    return y, s


def accuracy_rejection(probs: torch.Tensor, labels: torch.Tensor, score: torch.Tensor,
                       fractions) -> np.ndarray:
    """Accuracy on the inputs kept after refusing the share ``f`` with the highest
    ``score`` (most uncertain first), for each ``f`` in ``fractions`` (each < 1)."""
    order = torch.argsort(torch.as_tensor(score), stable=True)  # most certain first
    correct = (probs.argmax(-1) == labels).double()[order]
    n = len(labels)
    out = []
    for f in fractions:
        keep = max(1, int(round(n * (1 - f))))
        out.append(correct[:keep].mean().item())
    return np.array(out)


def calibration(probs: torch.Tensor, labels: torch.Tensor, num_bins: int = 15) -> dict:
    """A classifier's calibration in four numbers: ``ece``, its mean ``confidence``
    (top probability), its ``accuracy`` and ``overconfidence`` = confidence - accuracy
    (negative: under-confident on average)."""
    confidence = probs.double().max(-1).values.mean().item()
    acc = accuracy(probs, labels)
    return {"ece": ece(probs, labels, num_bins), "confidence": confidence,
            "accuracy": acc, "overconfidence": confidence - acc}


def mean_sd(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value) of
    ``values``, e.g. one metric over training seeds."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def verdict(a_samples, b_samples, higher_is_better: bool = True) -> str:
    """How method A compares with method B on a metric measured over several seeds:
    "better" or "worse" only when the difference of the means exceeds the spread of
    the difference between one run of each, sqrt(sd_a^2 + sd_b^2); otherwise "no
    difference"."""
    mean_a, sd_a = mean_sd(a_samples)
    mean_b, sd_b = mean_sd(b_samples)
    diff = mean_a - mean_b
    if abs(diff) <= float(np.hypot(sd_a, sd_b)):
        return "no difference"
    return "better" if (diff > 0) == higher_is_better else "worse"
