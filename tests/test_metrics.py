"""Metrics on small inputs whose answers are worked out by hand in the comments."""

import math

import numpy as np
import pytest
import torch

from bdl_src import metrics

# Three inputs, two classes; the labels are all 0.
PROBS = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
LABELS = torch.tensor([0, 0, 0])


def test_accuracy():
    # argmax: 0, 1, 0 -> two of three right
    assert metrics.accuracy(PROBS, LABELS) == pytest.approx(2 / 3)


def test_nll():
    # -(log 0.9 + log 0.2 + log 0.6) / 3
    expected = -(math.log(0.9) + math.log(0.2) + math.log(0.6)) / 3
    assert metrics.nll(PROBS, LABELS) == pytest.approx(expected)


def test_nll_of_a_zero_probability_is_finite():
    assert math.isfinite(metrics.nll(torch.tensor([[1.0, 0.0]]), torch.tensor([1])))


def test_ece_by_hand():
    # Confidences 0.95 (right), 0.95 (wrong), 0.65 (right), 0.65 (right); ten bins.
    # Bin (0.9, 1]: accuracy 1/2, confidence 0.95, share 1/2 -> 0.5 * 0.45 = 0.225
    # Bin (0.6, 0.7]: accuracy 1, confidence 0.65, share 1/2 -> 0.5 * 0.35 = 0.175
    probs = torch.tensor([[0.95, 0.05], [0.05, 0.95], [0.65, 0.35], [0.35, 0.65]])
    labels = torch.tensor([0, 0, 0, 1])
    assert metrics.ece(probs, labels, num_bins=10) == pytest.approx(0.4)
    r = metrics.reliability(probs, labels, num_bins=10)
    assert r["count"].tolist() == [0] * 6 + [2, 0, 0, 2]
    assert r["accuracy"][9] == pytest.approx(0.5)
    assert r["confidence"][6] == pytest.approx(0.65)
    assert np.isnan(r["accuracy"][0])


def test_ece_one_bin():
    # PROBS: confidences 0.9, 0.8, 0.6 all in (0.5, 1]; mean 23/30, accuracy 2/3 -> 0.1
    assert metrics.ece(PROBS, LABELS, num_bins=2) == pytest.approx(0.1)


def test_ece_is_zero_when_calibrated():
    # Confidence 0.75 with three of four right
    probs = torch.tensor([[0.75, 0.25]] * 4)
    assert metrics.ece(probs, torch.tensor([0, 0, 0, 1])) == pytest.approx(0.0)


def test_entropy():
    uniform = torch.full((1, 4), 0.25)
    one_hot = torch.tensor([[0.0, 1.0, 0.0, 0.0]])
    assert metrics.entropy(uniform).item() == pytest.approx(math.log(4))
    assert metrics.entropy(one_hot).item() == pytest.approx(0.0)
    # (0.5, 0.5, 0): log 2
    half = torch.tensor([0.5, 0.5, 0.0])
    assert metrics.entropy(half).item() == pytest.approx(math.log(2))


def test_predictive_entropy_and_mutual_information():
    # Input 0: the two samples disagree completely -> mean (0.5, 0.5), entropy log 2,
    # each sample certain (entropy 0), so all of it is epistemic: MI = log 2.
    # Input 1: both samples say (0.5, 0.5) -> entropy log 2, MI 0 (purely aleatoric).
    samples = torch.tensor([[[1.0, 0.0], [0.5, 0.5]],
                            [[0.0, 1.0], [0.5, 0.5]]])  # (S=2, N=2, C=2)
    h = metrics.predictive_entropy(samples)
    mi = metrics.mutual_information(samples)
    assert h.tolist() == pytest.approx([math.log(2), math.log(2)])
    assert mi.tolist() == pytest.approx([math.log(2), 0.0])
    # A single network: (N, C) is its own predictive distribution; sample 1 alone is
    # certain about input 0 and undecided about input 1.
    assert metrics.predictive_entropy(samples[1]).tolist() == pytest.approx(
        [0.0, math.log(2)])


def test_mutual_information_is_between_zero_and_entropy():
    gen = torch.Generator().manual_seed(0)
    samples = torch.softmax(torch.randn(20, 50, 10, generator=gen) * 3, -1)
    mi, h = metrics.mutual_information(samples), metrics.predictive_entropy(samples)
    assert (mi >= -1e-12).all() and (mi <= h + 1e-12).all()


def test_auroc_and_roc():
    assert metrics.auroc(torch.tensor([0.1, 0.2]), torch.tensor([0.3, 0.4])) == 1.0
    assert metrics.auroc(torch.tensor([0.3, 0.4]), torch.tensor([0.1, 0.2])) == 0.0
    # Out-scores 0.2 and 0.4 against in-scores 0.1 and 0.3: 3 of 4 pairs ordered -> 0.75
    assert metrics.auroc(torch.tensor([0.1, 0.3]), torch.tensor([0.2, 0.4])) == 0.75
    fpr, tpr = metrics.roc(torch.tensor([0.1, 0.2]), torch.tensor([0.3, 0.4]))
    assert fpr[0] == 0 and tpr[-1] == 1 and fpr[-1] == 1
    assert np.trapezoid(tpr, fpr) == pytest.approx(1.0)


def test_accuracy_rejection():
    # Correct: yes, no, yes, yes; scores put the wrong one as most uncertain.
    probs = torch.tensor([[0.9, 0.1], [0.4, 0.6], [0.8, 0.2], [0.7, 0.3]])
    labels = torch.tensor([0, 0, 0, 0])
    score = torch.tensor([0.1, 0.9, 0.2, 0.3])
    curve = metrics.accuracy_rejection(probs, labels, score, [0.0, 0.25, 0.5, 0.75])
    # Refuse nothing: 3/4; refuse the top quarter (the wrong one): 3/3; then all right
    assert curve.tolist() == pytest.approx([0.75, 1.0, 1.0, 1.0])
    # Refusing the most certain first instead keeps the mistake to the end
    curve = metrics.accuracy_rejection(probs, labels, -score, [0.0, 0.5, 0.75])
    assert curve.tolist() == pytest.approx([0.75, 0.5, 0.0])


def test_calibration_by_hand():
    # PROBS: confidences 0.9, 0.8, 0.6 (mean 23/30); right, wrong, right (2/3):
    # over-confident by 23/30 - 20/30 = 0.1; one bin makes the ECE the same 0.1.
    c = metrics.calibration(PROBS, LABELS, num_bins=1)
    assert c["confidence"] == pytest.approx(23 / 30)
    assert c["accuracy"] == pytest.approx(2 / 3)
    assert c["overconfidence"] == pytest.approx(0.1)
    assert c["ece"] == pytest.approx(0.1)
    # Under-confident: 0.6 everywhere, all right.
    under = metrics.calibration(torch.tensor([[0.6, 0.4]] * 3), LABELS)
    assert under["overconfidence"] == pytest.approx(-0.4)


def test_mean_sd():
    # mean 2, sample sd sqrt(((1-2)^2 + 0 + (3-2)^2) / 2) = 1
    assert metrics.mean_sd([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1.0))
    assert metrics.mean_sd([5.0]) == (5.0, 0.0)


def test_verdict_says_no_difference_inside_the_spread():
    # means 0.981 and 0.980, sds 0.001 each: difference 0.001 < sqrt(2) * 0.001
    a, b = [0.980, 0.981, 0.982], [0.979, 0.980, 0.981]
    assert metrics.verdict(a, b) == "no difference"
    assert metrics.verdict(b, a) == "no difference"


def test_verdict_says_better_or_worse_beyond_the_spread():
    a, b = [0.990, 0.991, 0.992], [0.979, 0.980, 0.981]
    assert metrics.verdict(a, b) == "better"
    assert metrics.verdict(b, a) == "worse"
    # lower is better (NLL): a lower mean is "better"
    assert metrics.verdict(b, a, higher_is_better=False) == "better"
