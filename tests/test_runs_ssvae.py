"""Tests of chapter 4's runs: the cached calls the page, the CLI and the results page
share, on tiny settings."""

from dataclasses import replace
from functools import partial

import pytest
import torch

from bdl_src.data import load_images
from bdl_src.m1 import M1Config
from bdl_src.runs import ssvae as R
from bdl_src.ssvae import SSVAEConfig, classify
from bdl_src.ssvae_baselines import BaselineConfig

TINY_M1 = M1Config(code_dim=6, hidden_dim=16, num_layers=1, num_epochs=2,
                   warmup_epochs=2, batch_size=100)
TINY = dict(z_dim=3, hidden_dim=16, num_epochs=1, batch_size=100,
            labelled_batch_size=10, m1=TINY_M1, num_val=100, num_train=300)
TINY_BASELINE = dict(num_steps=20, eval_every=10, m1=TINY_M1, hidden_dim=16,
                     num_val=100, num_train=300)


def test_m1_and_m2_train_once_then_load_from_the_cache():
    config = SSVAEConfig(num_labels=20, **TINY)
    m1, m1_history, m1_info = R.fit_m1(config)
    ssvae, codes, history, info = R.fit_ssvae(config, m1)
    assert not m1_info["from_cache"] and not info["from_cache"]
    assert len(m1_history["epoch_losses"]) == 2
    assert len(history["epoch_test_accuracy"]) == 1
    assert len(codes.labelled) == 20 and info["examples"] == len(codes.unlabelled)
    assert codes.labelled.loc.shape == (20, TINY_M1.code_dim)

    m1_again, m1_history_again, m1_info_again = R.fit_m1(config)
    again, _, history_again, info_again = R.fit_ssvae(config, m1_again)
    assert m1_info_again["from_cache"] and info_again["from_cache"]
    assert m1_history_again == m1_history and history_again == history
    x = m1.encode(load_images("mnist", train=False).images[:8])[0]
    assert torch.equal(classify(ssvae, x), classify(again, x))
    assert not again.training
    for k, v in m1.state_dict().items():
        assert torch.equal(v, m1_again.state_dict()[k]), k
    other_draw = R.fit_ssvae(replace(config, draw=1), m1)
    assert not other_draw[3]["from_cache"]  # another draw of the labels, another model
    assert not torch.equal(other_draw[1].labelled.loc, codes.labelled.loc)


@pytest.mark.parametrize("features", ["pixels", "m1"])
def test_baseline_trains_once_then_loads_from_the_cache(features):
    m1 = R.fit_m1(SSVAEConfig(num_labels=20, **TINY))[0]
    config = BaselineConfig(num_labels=20, features=features, **TINY_BASELINE)
    net, result = R.fit_baseline(config, m1)
    assert result["test_probs"].shape == (10_000, 10)
    assert result["best_step"] in (10, 20)
    again, result_again = R.fit_baseline(config, m1)
    assert torch.equal(result_again["test_probs"], result["test_probs"])
    x = torch.rand(2, 784) if features == "pixels" else torch.randn(2, TINY_M1.code_dim)
    assert net(x).shape == (2, 10) and torch.equal(net(x), again(x))


def test_a_baseline_of_unknown_features_is_refused():
    with pytest.raises(ValueError, match="features"):
        R.fit_baseline(BaselineConfig(features="labels"), None)


def test_cli_run_reports_the_keys_the_results_page_reads(monkeypatch):
    monkeypatch.setattr(R, "BOOK_LABELS", (20, 40))
    monkeypatch.setattr(R, "BOOK_DRAWS", 2)
    monkeypatch.setattr(R, "SSVAEConfig", partial(SSVAEConfig, **TINY))
    monkeypatch.setattr(R, "BaselineConfig", partial(BaselineConfig, **TINY_BASELINE))
    assert R.book_runs() == [(20, 0), (20, 1), (40, 0)]
    metrics = R.cli_run()
    expected = ["M1 train seconds (shared)"]
    for n in (20, 40):
        for name in ("SS-VAE (M1+M2)", "labels-only MLP", "M1-code classifier"):
            expected.append(f"{name} test accuracy, {n} labels")
            if n == 20:
                expected.append(f"{name} test accuracy sd over 2 draws, {n} labels")
    expected += [f"SS-VAE (M1+M2) train seconds, {n} labels" for n in (20, 40)]
    assert list(metrics) == expected
    again = R.cli_run()  # everything from the cache: the same numbers
    assert {k: v for k, v in again.items() if "accuracy" in k} == \
        {k: v for k, v in metrics.items() if "accuracy" in k}


def test_verdict_says_within_when_the_difference_is_inside_the_spread():
    assert R.verdict(2.0, 0.5) == "above"
    assert R.verdict(0.3, 0.5) == "within"
    assert R.verdict(-0.3, 0.5) == "within"
    assert R.verdict(-2.0, 0.5) == "below"
