"""Chapter 2's runs: the BNN and every baseline, over training seeds, trained through
the checkpoint cache with the book's settings, evaluated once, and their comparison.

book/bnn.md makes the same ``cached`` calls for the BNN and the deterministic network
of seed 0 in plain sight (same name, key, training function and arguments), so the
page, the CLI and the results page share one cache entry per network. Every
prediction a figure or a table of the chapter needs is computed once per method and
seed by ``evaluate`` and kept in the cache as plain numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, replace

import numpy as np
import pandas as pd
import torch

from bdl_src import baselines, bnn, metrics, train
from bdl_src.baselines import NetConfig
from bdl_src.bnn import BNNConfig
from bdl_src.cache import cached
from bdl_src.data import ImageData

SEEDS = (0, 1, 2)  # training seeds of every method
EVAL_SAMPLES = 20  # posterior samples (BNN, MC dropout, Laplace) behind a prediction
ENSEMBLE_SIZE = 5
ANGLES = tuple(range(0, 181, 30))  # rotations of the test digits (degrees)
NUM_SHIFTED = 1000  # test digits rotated for the dataset-shift sweep
FRACTIONS = tuple(float(f) for f in np.linspace(0, 0.2, 21))  # refusal curve
MC_DROPOUT = 0.1  # dropout probability of the MC-dropout network (bench/select_bnn.py)
METHODS = ("BNN", "deterministic", "temperature scaling", "MC dropout",
           "deep ensemble", "last-layer Laplace")

# What the training depends on beyond the training function and the networks' classes
# (which ``cached`` covers itself): the cache key includes their source.
BNN_CODE = (bnn.linear, bnn.LocalReparameterization, bnn._inverse_softplus,
            train.minibatches, train.num_batches, train.lr_decay)
TWIN_CODE = (train.minibatches, train.num_batches, train.lr_decay)
EVAL_CODE = (bnn.predict_bnn, bnn.predict_twin, bnn.rotate, baselines,
             metrics.accuracy, metrics.nll, metrics.reliability, metrics.ece,
             metrics.entropy, metrics.predictive_entropy, metrics.mutual_information,
             metrics.auroc, metrics.accuracy_rejection)


def fit_key(config, train_data: ImageData) -> dict:
    """The cache key's configuration: the settings and the size of the training set."""
    return {"config": asdict(config), "num_data": len(train_data)}


def fit_bnn(train_data: ImageData, config: BNNConfig = BNNConfig(),
            refresh: bool = False):
    """The BNN of the book, trained by ``bnn.train_bnn`` or loaded from the cache.
    Returns ``(model, guide, history, info)``."""
    device = train.default_device()
    x, y = train_data.images.to(device), train_data.labels.to(device)
    num_data = round(len(x) / config.temperature)  # the tempered data-set size
    model = bnn.BayesianMLP(num_data, config.hidden_dim, config.prior_scale,
                            fan_in_prior=config.fan_in_prior).to(device)
    guide = bnn.MeanFieldGuide(model, config.init_scale,
                               torch.Generator().manual_seed(config.seed)).to(device)
    history, info = cached("bnn", fit_key(config, train_data), bnn.train_bnn, model,
                           guide, x, y, config, code=BNN_CODE, refresh=refresh)
    return model, guide, history, info


def fit_twin(train_data: ImageData, config: NetConfig = NetConfig(),
             refresh: bool = False):
    """A deterministic network (with dropout if ``config.dropout``), trained by
    ``bnn.train_twin`` or loaded from the cache; ``config`` is a ``NetConfig`` (or a
    ``BNNConfig``, for a twin with the BNN's own settings). Returns ``(net, history,
    info)``."""
    device = train.default_device()
    x, y = train_data.images.to(device), train_data.labels.to(device)
    torch.manual_seed(config.seed)  # the initial weights
    dropout = getattr(config, "dropout", 0.0)
    net = bnn.DeterministicMLP(config.hidden_dim, dropout=dropout).to(device)
    history, info = cached("bnn_twin", fit_key(config, train_data), bnn.train_twin, net,
                           x, y, config, code=TWIN_CODE, refresh=refresh)
    return net.eval(), history, info


def member_seeds(seed: int) -> list[int]:
    """Seeds of the ensemble of training seed ``seed``: its first member is the
    deterministic network of that seed; no two ensembles share a member."""
    return [seed + len(SEEDS) * k for k in range(ENSEMBLE_SIZE)]


def fit_all(data: dict, seed: int, refresh: bool = False) -> dict:
    """Every method's networks for one training seed: ``{"bnn": (model, guide),
    "nets": [ensemble members, the first being the deterministic network],
    "dropout": net, "seconds": {method: training seconds}}``."""
    model, guide, _, bnn_info = fit_bnn(data["train"], replace(BNNConfig(), seed=seed),
                                        refresh)
    members = [fit_twin(data["train"], replace(NetConfig(), seed=s), refresh)
               for s in member_seeds(seed)]
    dropout, _, dropout_info = fit_twin(
        data["train"], replace(NetConfig(), seed=seed, dropout=MC_DROPOUT), refresh)
    twin_seconds = members[0][2]["train_seconds"]
    return {"bnn": (model, guide), "nets": [m[0] for m in members], "dropout": dropout,
            "keys": [bnn_info["key"], dropout_info["key"],
                     *(m[2]["key"] for m in members)],
            "seconds": {"BNN": bnn_info["train_seconds"], "deterministic": twin_seconds,
                        "temperature scaling": twin_seconds,
                        "last-layer Laplace": twin_seconds,
                        "MC dropout": dropout_info["train_seconds"],
                        "deep ensemble": sum(m[2]["train_seconds"] for m in members)}}


def predictors(fits: dict, data: dict, seed: int) -> dict:
    """``{method: (predict(x) -> (S, N, 10), forward passes per image)}``, with the
    temperature and the Laplace prior precision fitted on MNIST validation."""
    model, guide = fits["bnn"]
    net, val = fits["nets"][0], data["val"]
    temperature = baselines.fit_temperature(baselines.logits_of(net, val.images),
                                            val.labels)
    laplace = baselines.fit_last_layer_laplace(net, data["train"].images)
    tau = baselines.select_prior_precision(net, laplace, val.images, val.labels,
                                           num_samples=EVAL_SAMPLES)
    return {
        "BNN": (lambda x: bnn.predict_bnn(model, guide, x, EVAL_SAMPLES, seed),
                EVAL_SAMPLES),
        "deterministic": (lambda x: baselines.predict_scaled(net, x), 1),
        "temperature scaling": (
            lambda x: baselines.predict_scaled(net, x, temperature), 1),
        "MC dropout": (lambda x: baselines.predict_mc_dropout(
            fits["dropout"], x, EVAL_SAMPLES, seed), EVAL_SAMPLES),
        "deep ensemble": (lambda x: baselines.predict_ensemble(fits["nets"], x),
                          ENSEMBLE_SIZE),
        "last-layer Laplace": (lambda x: baselines.predict_laplace(
            net, laplace, x, tau, EVAL_SAMPLES, seed), 1),
    }, {"temperature": temperature, "prior_precision": tau}


def scores(sample_probs: torch.Tensor, labels: torch.Tensor) -> dict:
    """Accuracy, NLL and ECE of the predictive (the mean over samples)."""
    p = sample_probs.mean(0)
    return {"accuracy": metrics.accuracy(p, labels), "nll": metrics.nll(p, labels),
            "ece": metrics.ece(p, labels)}


def evaluate_method(predict, data: dict, shifted: dict) -> dict:
    """One method's numbers, as plain JSON: validation and test scores, AUROC MNIST
    test vs Fashion-MNIST test by predictive entropy and by mutual information, the
    reliability diagram's bins and the refusal curve on test, and accuracy, ECE and
    mean predictive entropy on the rotated test digits (``shifted``: angle -> images,
    labels)."""
    start = time.perf_counter()
    sp = {"test": predict(data["test"].images)}
    predict_seconds = time.perf_counter() - start
    sp.update(val=predict(data["val"].images), fashion=predict(data["fashion"].images))
    labels = data["test"].labels
    h = {k: metrics.predictive_entropy(sp[k]) for k in ("test", "fashion")}
    out = {**scores(sp["test"], labels),
           **{f"val_{k}": v for k, v in scores(sp["val"], data["val"].labels).items()},
           "auroc_entropy": metrics.auroc(h["test"], h["fashion"]),
           "auroc_mi": None, "predict_seconds": predict_seconds}
    if len(sp["test"]) > 1:
        mi = {k: metrics.mutual_information(sp[k]) for k in ("test", "fashion")}
        out["auroc_mi"] = metrics.auroc(mi["test"], mi["fashion"])
    rel = metrics.reliability(sp["test"].mean(0), labels)
    out["reliability"] = {k: [float(v) for v in rel[k]]
                          for k in ("confidence", "accuracy", "count")}
    out["refusal"] = [float(a) for a in metrics.accuracy_rejection(
        sp["test"].mean(0), labels, h["test"], FRACTIONS)]
    out["shift"] = {}
    for angle, (images, angle_labels) in shifted.items():
        s = predict(images)
        out["shift"][str(angle)] = {
            **scores(s, angle_labels),
            "entropy": metrics.predictive_entropy(s).mean().item()}
    return out


def shifted_test(data: dict) -> dict:
    """The first ``NUM_SHIFTED`` test digits rotated by each of ``ANGLES``."""
    upright = data["test"].subset(slice(0, NUM_SHIFTED))
    return {a: (bnn.rotate(upright.images, a), upright.labels) for a in ANGLES}


def evaluate(fits: dict, data: dict, seed: int) -> dict:
    """``evaluate_method`` for every method of one seed, plus the temperature and the
    Laplace prior precision chosen on validation."""
    shifted = shifted_test(data)
    predict, fitted = predictors(fits, data, seed)
    out = {}
    for method, (fn, passes) in predict.items():
        out[method] = {**evaluate_method(fn, data, shifted),
                       "forward_passes": passes,
                       "train_seconds": fits["seconds"][method]}
    return {"methods": out, **fitted}


def evaluated(data: dict, seed: int, refresh: bool = False) -> dict:
    """``evaluate``'s numbers for one seed, kept in the checkpoint cache (keyed on the
    networks' own keys), so the page, the results page and the CLI predict once."""
    fits = fit_all(data, seed, refresh)
    key = {"seed": seed, "fits": fits["keys"], "samples": EVAL_SAMPLES,
           "angles": ANGLES, "num_shifted": NUM_SHIFTED, "fractions": FRACTIONS,
           "num_test": len(data["test"])}
    code = (*EVAL_CODE, predictors, evaluate_method, scores, shifted_test)
    results, _ = cached("bnn-eval", key, evaluate, fits, data, seed, code=code,
                        refresh=refresh, saves_state=False)
    return results


def compare(data: dict, seeds=SEEDS, refresh: bool = False) -> dict:
    """``{seed: evaluated(data, seed)}`` for every training seed."""
    return {seed: evaluated(data, seed, refresh) for seed in seeds}


# What the comparison table shows: row label -> (key, factor, higher is better)
COLUMNS = {"accuracy (%)": ("accuracy", 100, True), "NLL (nats)": ("nll", 1, False),
           "ECE (%)": ("ece", 100, False),
           "AUROC, entropy": ("auroc_entropy", 1, True),
           "AUROC, mutual info.": ("auroc_mi", 1, True),
           "training (s)": ("train_seconds", 1, False),
           "prediction (ms / 1000 images)": ("predict_seconds", 100, False)}


VAL_COLUMNS = {"val accuracy (%)": ("val_accuracy", 100, True),
               "val NLL (nats)": ("val_nll", 1, False),
               "val ECE (%)": ("val_ece", 100, False)}


def values(results: dict, method: str, key: str, factor: float = 1.0) -> list:
    """One number of one method, over seeds (empty where the method has none)."""
    out = [results[s]["methods"][method][key] for s in results]
    return [factor * v for v in out if v is not None]


def mean_sd_text(mean: float, sd: float, digits: int = 4) -> str:
    """"mean ± sd" with the mean rounded to the sd's first significant digit
    (98.0512, 0.0312 -> "98.05 ± 0.03"); ``digits`` significant digits if sd is 0."""
    if not sd > 0:
        return f"{mean:.{digits}g} ± 0"
    decimals = max(0, -math.floor(math.log10(sd)))
    return f"{mean:.{decimals}f} ± {sd:.{decimals}f}"


def comparison_table(results: dict, digits: int = 4,
                     columns: dict = COLUMNS) -> pd.DataFrame:
    """Mean ± sd over seeds of every column of ``columns`` (by default ``COLUMNS``, with
    the forward passes one prediction costs), one row per method."""
    rows = {}
    for method in METHODS:
        row = {}
        for col, (key, factor, _) in columns.items():
            v = values(results, method, key, factor)
            mean, sd = metrics.mean_sd(v) if v else (None, None)
            row[col] = "—" if mean is None else mean_sd_text(mean, sd, digits)
        if columns is COLUMNS:
            row["forward passes"] = results[next(iter(results))]["methods"][method][
                "forward_passes"]
        rows[method] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def verdicts(results: dict, method: str, other: str) -> dict:
    """``metrics.verdict`` of ``method`` against ``other`` on every column."""
    return {col: metrics.verdict(values(results, method, key),
                                 values(results, other, key), higher)
            for col, (key, _, higher) in COLUMNS.items()
            if values(results, method, key) and values(results, other, key)}


def cli_run(seed: int = 0, refresh: bool = False) -> dict:
    """Train (or load) every method over ``SEEDS`` (offset by ``seed``), evaluate them,
    and return the comparison table as ``{"method: column": "mean ± sd"}``."""
    data = bnn.load_data(BNNConfig())
    return headline(compare(data, tuple(seed + s for s in SEEDS), refresh))


def headline(results: dict) -> dict:
    """The comparison table of ``compare``'s results as ``{"method: column": "mean ±
    sd"}``: what the chapter records for the results page and the CLI prints."""
    table = comparison_table(results)
    return {f"{method}: {col}": str(value) for method, row in table.iterrows()
            for col, value in row.items()}
