"""Chapter 2's runs: the BNN and its deterministic twin trained through the checkpoint
cache with the book's settings, and their headline metrics.

book/bnn.md makes the same ``cached`` calls in plain sight (same name, key, training
function and arguments), so the page, the CLI and the results page share one cache
entry per network.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from bdl_src import bnn, metrics, train
from bdl_src.bnn import BNNConfig
from bdl_src.cache import cached
from bdl_src.data import ImageData

BOOK_NUM_SAMPLES = 100  # posterior samples behind every BNN prediction in the book

# What the training depends on beyond the training function and the networks' classes
# (which ``cached`` covers itself): the cache key includes their source.
BNN_CODE = (bnn.linear, bnn.LocalReparameterization, bnn._inverse_softplus,
            train.minibatches, train.num_batches, train.lr_decay)
TWIN_CODE = (train.minibatches, train.num_batches, train.lr_decay)
METRICS_CODE = (bnn.predict_bnn, bnn.predict_twin, bnn.evaluate, metrics.accuracy,
                metrics.nll, metrics.reliability, metrics.ece, metrics.entropy,
                metrics.predictive_entropy, metrics.mutual_information, metrics.auroc,
                metrics.accuracy_rejection)


def fit_key(config: BNNConfig, train_data: ImageData) -> dict:
    """The cache key's configuration: the settings and the size of the training set."""
    return {"config": asdict(config), "num_data": len(train_data)}


def fit_bnn(train_data: ImageData, config: BNNConfig = BNNConfig(),
            refresh: bool = False):
    """The BNN of the book, trained by ``bnn.train_bnn`` or loaded from the cache.
    Returns ``(model, guide, history, info)``."""
    device = train.default_device()
    x, y = train_data.images.to(device), train_data.labels.to(device)
    num_data = round(len(x) / config.temperature)  # the tempered data-set size
    model = bnn.BayesianMLP(num_data, config.hidden_dim, config.prior_scale).to(device)
    guide = bnn.MeanFieldGuide(model, config.init_scale,
                               torch.Generator().manual_seed(config.seed)).to(device)
    history, info = cached("bnn", fit_key(config, train_data), bnn.train_bnn, model,
                           guide, x, y, config, code=BNN_CODE, refresh=refresh)
    return model, guide, history, info


def fit_twin(train_data: ImageData, config: BNNConfig = BNNConfig(),
             refresh: bool = False):
    """The deterministic twin, trained by ``bnn.train_twin`` or loaded from the cache.
    Returns ``(net, history, info)``."""
    device = train.default_device()
    x, y = train_data.images.to(device), train_data.labels.to(device)
    torch.manual_seed(config.seed)  # the initial weights
    net = bnn.DeterministicMLP(config.hidden_dim).to(device)
    history, info = cached("bnn_twin", fit_key(config, train_data), bnn.train_twin, net,
                           x, y, config, code=TWIN_CODE, refresh=refresh)
    return net.eval(), history, info


def evaluate(model, guide, net, data: dict, config: BNNConfig,
             evaluated: dict | None = None) -> dict:
    """``bnn.evaluate``'s metrics of both networks on MNIST test and Fashion-MNIST test,
    with ``BOOK_NUM_SAMPLES`` posterior samples drawn with ``config.seed``; or
    ``evaluated``, metrics already computed with these very settings, as they are."""
    if evaluated is not None:
        return evaluated
    sample_probs = {k: bnn.predict_bnn(model, guide, data[k].images, BOOK_NUM_SAMPLES,
                                       config.seed) for k in ("test", "fashion")}
    twin_probs = {k: bnn.predict_twin(net, data[k].images) for k in ("test", "fashion")}
    return bnn.evaluate(sample_probs, twin_probs, data)


def headline_metrics(config: BNNConfig = BNNConfig(), refresh: bool = False,
                     evaluated: dict | None = None) -> dict:
    """``evaluate``'s metrics of both networks plus their training times.

    The metrics are kept in the checkpoint cache, so the results page and the CLI do not
    predict again. The chapter passes the metrics it has just computed with these very
    settings as ``evaluated``, which are then stored instead of computed twice.
    """
    data = bnn.load_data(config)
    model, guide, _, bnn_info = fit_bnn(data["train"], config, refresh=refresh)
    net, _, twin_info = fit_twin(data["train"], config, refresh=refresh)
    # Keyed on the two fits too: retrained networks get their metrics computed afresh.
    metrics_key = {"config": asdict(config), "num_samples": BOOK_NUM_SAMPLES,
                   "bnn": bnn_info["key"], "twin": twin_info["key"]}
    results, _ = cached("bnn-metrics", metrics_key, evaluate, model, guide, net, data,
                        config, evaluated, code=METRICS_CODE, refresh=refresh,
                        saves_state=False)
    return {**results, "bnn_train_seconds": bnn_info["train_seconds"],
            "twin_train_seconds": twin_info["train_seconds"]}


def cli_run(seed: int = 0, refresh: bool = False) -> dict:
    """Train (or load) both networks with the book's configuration, evaluate them on
    MNIST test and Fashion-MNIST test, and return the headline metrics."""
    return headline_metrics(BNNConfig(seed=seed), refresh=refresh)
