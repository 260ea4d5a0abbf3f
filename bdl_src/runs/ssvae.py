"""Chapter 4's runs: M1, then M2 and both labelled-only baselines for every number of
labels the book shows, trained through the cache with the book's settings.

book/ssvae.md makes the same ``cached`` calls for M1 and M2 in plain sight (and calls
``fit_baseline``), so the page, the CLI and the results page share one cache entry per
model. The page trains M2 for every number of labels before the baselines, ``cli_run``
one number of labels at a time, both as the code that first computed the book's numbers
did: the pixels baselines start from the random state the runs before them leave (see
``on_cpu`` and ``fit_baseline``).
"""

from __future__ import annotations

import copy
from dataclasses import asdict

import pyro
import torch

from bdl_src.cache import cached
from bdl_src.data import ImageData
from bdl_src.m1 import M1, kl_weight, train_m1
from bdl_src.nets import GreyBernoulli, loc_scale, mlp
from bdl_src.ssvae import SSVAE, SSVAEConfig, SSVAELoss, accuracy, classify, train_ssvae
from bdl_src.ssvae_baselines import BaselineConfig, CodeClassifier, train_baseline
from bdl_src.ssvae_data import SplitData, keep_labels, split_data
from bdl_src.train import (
    cycle_batches,
    default_device,
    lr_decay,
    minibatches,
    num_batches,
)

# Numbers of labels the chapter compares: with 1000 as well, training all of them takes
# about 5.5 minutes on two CPU cores, over the book's 5-minute budget for the chapter.
BOOK_LABELS = (100, 3000)

# What the training depends on beyond the train function and the modules' classes,
# which the cache key covers by itself.
M1_CODE = (split_data, keep_labels, mlp, loc_scale, GreyBernoulli, minibatches,
           lr_decay, kl_weight)
M2_CODE = (*M1_CODE, train_m1, SSVAELoss, accuracy, classify, cycle_batches,
           num_batches)
BASELINE_CODE = (*M1_CODE, train_m1, cycle_batches)


def m1_key(config: SSVAEConfig) -> dict:
    """What defines M1: its settings and the images it learns from (every training
    image but the validation ones; M1 is the same for every number of labels)."""
    return {"m1": asdict(config.m1), "data": {"num_val": config.num_val,
                                              "num_train": config.num_train,
                                              "seed": config.seed}}


def fit_m1(config: SSVAEConfig = SSVAEConfig(), refresh: bool = False
           ) -> tuple[M1, dict, dict]:
    """M1 trained by ``train_m1`` (or restored from the cache): ``(m1, history,
    info)``."""
    device = default_device()
    data = split_data(0, config.num_val, config.num_train, config.seed, device)
    x = data.train_images()  # every training image; no label is kept
    pyro.set_rng_seed(config.seed)  # the networks' initial weights
    m1 = M1(config.m1.code_dim, config.m1.hidden_dim, config.m1.num_layers,
            num_data=len(x)).to(device)
    history, info = cached("ssvae-m1", m1_key(config), train_m1, m1, x, config.m1,
                           config.seed, code=M1_CODE, refresh=refresh)
    return m1, history, info


def fit_ssvae(config: SSVAEConfig, m1: M1, refresh: bool = False
              ) -> tuple[SSVAE, SplitData, dict, dict]:
    """M2 on the code of the trained ``m1``, trained by ``train_ssvae`` (or restored
    from the cache): ``(ssvae, data, history, info)``."""
    device = default_device()
    data = split_data(config.num_labels, config.num_val, config.num_train, config.seed,
                      device)
    pyro.set_rng_seed(config.seed)  # the networks' initial weights
    ssvae = SSVAE(m1, config.z_dim, config.hidden_dim, num_labelled=len(data.labelled),
                  num_unlabelled=len(data.unlabelled)).to(device)
    history, info = cached("ssvae", config, train_ssvae, ssvae, data, config,
                           code=M2_CODE, refresh=refresh)
    return ssvae, data, history, info


def on_cpu(ssvae: SSVAE, config: SSVAEConfig) -> SSVAE:
    """A copy of a trained M2 (with its M1) on the CPU, in eval mode: the model the
    figures use, wherever it was trained.

    Like every copy this module returns, it is built anew and then loaded, as in the
    runs that first computed the book's numbers. Building it draws initial weights
    from torch's global random state, and the pixels baseline (``fit_baseline``)
    starts from the state that leaves: call both in the book's order to reproduce its
    numbers.
    """
    model = SSVAE(copy.deepcopy(ssvae.m1).cpu(), config.z_dim, config.hidden_dim)
    model.load_state_dict(ssvae.state_dict())
    return model.eval()


def fit_baseline(config: BaselineConfig, m1: M1 | None = None, refresh: bool = False
                 ) -> tuple[CodeClassifier, dict]:
    """A labelled-only classifier trained by ``train_baseline`` (or restored from the
    cache): a copy on the CPU in eval mode (built anew, like ``on_cpu``'s), and a dict
    of the history (validation accuracy by check, ``best_step``), the final
    ``test_accuracy`` and the training ``seconds``.

    ``features="m1"`` needs the trained ``m1``: it encodes the images once and only the
    classifier learns. With ``"pixels"`` a new M1-shaped encoder learns too. It is
    built before seeding, as in the runs that first computed the book's numbers: its
    initial weights come from torch's global random state at the call.
    """
    if config.features not in ("pixels", "m1"):
        raise ValueError(f"features must be 'pixels' or 'm1', got {config.features!r}")
    device = default_device()
    shape = (config.m1.code_dim, config.m1.hidden_dim, config.m1.num_layers)
    if config.features == "pixels":
        m1 = M1(*shape)  # not seeded: see above
    data = split_data(config.num_labels, config.num_val, config.num_train, config.seed,
                      device)
    torch.manual_seed(config.seed)  # the classifier's initial weights
    net = CodeClassifier(m1, config.hidden_dim).to(device)
    trained, x, val = net, data.labelled.images, data.val
    if config.features == "m1":  # M1 is fixed: encode once, train the classifier
        with torch.no_grad():
            x, val = m1.encode(x)[0], ImageData(m1.encode(val.images)[0], val.labels)
        trained = net.classifier
    history, info = cached("ssvae-baseline", config, train_baseline, trained, x,
                           data.labelled.labels, val, config, code=BASELINE_CODE,
                           refresh=refresh)
    with torch.no_grad():
        correct = net(data.test.images).argmax(-1) == data.test.labels
    cpu_copy = CodeClassifier(M1(*shape), config.hidden_dim)
    cpu_copy.load_state_dict(net.state_dict())
    return cpu_copy.eval(), {**history, "test_accuracy": correct.float().mean().item(),
                             "seconds": info["train_seconds"]}


def accuracy_by_time(m1_seconds: float, history: dict) -> list[tuple[float, float]]:
    """(seconds of training so far, test accuracy of q(y | x)) after every epoch of M2,
    the clock starting with M1's training: what one run from scratch costs."""
    return [(m1_seconds + seconds, acc) for seconds, acc in
            zip(history["epoch_seconds"], history["epoch_test_accuracy"])]


def accuracy_at(m1_seconds: float, history: dict, seconds: float
                ) -> tuple[float, float, int]:
    """Where training stood after ``seconds`` (M1's time included): ``(time, test
    accuracy, epochs of M2)`` at the end of the last epoch finished by then, or of the
    first epoch if even that one finished later."""
    timeline = accuracy_by_time(m1_seconds, history)
    done = [i for i, (t, _) in enumerate(timeline) if t <= seconds]
    i = done[-1] if done else 0
    return (*timeline[i], i + 1)


def cli_run(seed: int = 0, refresh: bool = False) -> dict:
    """Train (or load) M1, then M2 and both baselines for every number of labels the
    book shows; return the test accuracies and the training times."""
    m1, _, m1_info = fit_m1(SSVAEConfig(seed=seed), refresh=refresh)
    metrics = {"M1 train seconds (shared)": m1_info["train_seconds"]}
    for n in BOOK_LABELS:
        config = SSVAEConfig(num_labels=n, seed=seed)
        ssvae, _, history, _ = fit_ssvae(config, m1, refresh=refresh)
        on_cpu(ssvae, config)  # as the page does (see on_cpu)
        accuracies = history["epoch_test_accuracy"]
        metrics[f"SS-VAE test accuracy, {n} labels"] = accuracies[-1]
        metrics[f"SS-VAE train seconds, {n} labels"] = history["epoch_seconds"][-1]
        for features in ("pixels", "m1"):
            _, base = fit_baseline(BaselineConfig(num_labels=n, features=features,
                                                  seed=seed), m1, refresh=refresh)
            metrics[f"labelled only ({features}) test accuracy, {n} labels"] = \
                base["test_accuracy"]
    return metrics
