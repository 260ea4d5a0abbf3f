"""Chapter 4's runs: M1, then M2 and both labelled-only baselines for every number of
labels and every draw of the labelled images the book shows, trained through the cache
with the book's settings.

book/ssvae.md makes the same ``cached`` calls for M1 and M2 in plain sight (and calls
``fit_baseline``), so the page, the CLI and the results page share one cache entry per
model.
"""

from __future__ import annotations

from dataclasses import asdict

import pyro
import torch

from bdl_src import metrics
from bdl_src.cache import cached
from bdl_src.data import ImageData
from bdl_src.m1 import M1, kl_weight, train_m1
from bdl_src.nets import GreyBernoulli, loc_scale, mlp
from bdl_src.ssvae import (
    SSVAE,
    Classifier,
    SSVAEConfig,
    SSVAELoss,
    accuracy,
    classify,
    train_ssvae,
)
from bdl_src.ssvae_baselines import (
    NAMES,
    BaselineConfig,
    PixelClassifier,
    predict,
    train_baseline,
)
from bdl_src.ssvae_data import (
    CodeData,
    CodeSplit,
    encode,
    keep_labels,
    split_data,
)
from bdl_src.train import (
    cycle_batches,
    default_device,
    lr_decay,
    minibatches,
    num_batches,
)

# Numbers of labels the chapter compares, and how many random draws of the labelled
# images it trains for the smallest one (one draw for the others).
BOOK_LABELS = (100, 600, 1000, 3000)
BOOK_DRAWS = 3

# What the training depends on beyond the train function and the modules' classes,
# which the cache key covers by itself.
M1_CODE = (split_data, keep_labels, mlp, loc_scale, GreyBernoulli, minibatches,
           lr_decay, kl_weight)
M2_CODE = (*M1_CODE, train_m1, encode, CodeSplit.draw, SSVAELoss, accuracy, classify,
           cycle_batches, num_batches)
BASELINE_CODE = (*M1_CODE, train_m1, encode, cycle_batches)


def book_runs() -> list[tuple[int, int]]:
    """(number of labels, draw) of every M2 and baseline the chapter trains."""
    return [(n, draw) for n in BOOK_LABELS
            for draw in range(BOOK_DRAWS if n == BOOK_LABELS[0] else 1)]


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
    return m1.eval(), history, info


def codes_of(config: SSVAEConfig | BaselineConfig, m1: M1) -> CodeData:
    """The run's images, split by ``config`` and encoded by ``m1``."""
    return encode(m1, split_data(config.num_labels, config.num_val, config.num_train,
                                 config.seed, default_device(), config.draw))


def fit_ssvae(config: SSVAEConfig, m1: M1, refresh: bool = False
              ) -> tuple[SSVAE, CodeData, dict, dict]:
    """M2 on the codes of the trained ``m1``, trained by ``train_ssvae`` (or restored
    from the cache): ``(ssvae, codes, history, info)``, the model on the CPU in eval
    mode."""
    codes = codes_of(config, m1)
    pyro.set_rng_seed(config.seed)  # the networks' initial weights
    ssvae = SSVAE(m1.code_dim, config.z_dim, config.hidden_dim,
                  num_labelled=len(codes.labelled),
                  num_unlabelled=len(codes.unlabelled)).to(default_device())
    history, info = cached("ssvae", config, train_ssvae, ssvae, codes, config,
                           code=M2_CODE, refresh=refresh)
    return ssvae.cpu().eval(), codes, history, info


def fit_baseline(config: BaselineConfig, m1: M1, refresh: bool = False
                 ) -> tuple[torch.nn.Module, dict]:
    """A labelled-only classifier trained by ``train_baseline`` (or restored from the
    cache), on the CPU in eval mode, and a dict of its history (validation accuracy by
    check, ``best_step``), its test class probabilities ``test_probs`` and the training
    ``seconds``. ``m1`` encodes the images for ``features="m1"``; the labelled images
    are the same draw as M2's."""
    if config.features not in NAMES:
        raise ValueError(f"features must be one of {list(NAMES)}, got "
                         f"{config.features!r}")
    device = default_device()
    data = split_data(config.num_labels, config.num_val, config.num_train, config.seed,
                      device, config.draw)
    torch.manual_seed(config.seed)  # the initial weights
    if config.features == "pixels":
        net = PixelClassifier(config.m1, config.hidden_dim, config.dropout)
        x, val, test = data.labelled.images, data.val, data.test.images
    else:
        codes = encode(m1, data)
        net = Classifier(m1.code_dim, config.hidden_dim)
        x, test = codes.labelled.loc, codes.test.loc
        val = ImageData(codes.val.loc, codes.val.labels)
    net = net.to(device)
    history, info = cached("ssvae-baseline", config, train_baseline, net, x,
                           data.labelled.labels, val, config, code=BASELINE_CODE,
                           refresh=refresh)
    net = net.cpu().eval()
    return net, {**history, "test_probs": predict(net, test.cpu()),
                 "seconds": info["train_seconds"]}


def verdict(difference: float, spread: float) -> str:
    """How a difference stands against its spread: "above" (larger than the spread),
    "below" (smaller than minus the spread) or "within" it."""
    if difference > spread:
        return "above"
    return "below" if difference < -spread else "within"


def run_all(seed: int = 0, refresh: bool = False) -> dict:
    """M1, then M2 and both baselines for every ``book_runs()`` entry (trained or
    loaded): {"m1": (m1, history, info), (n, draw): {"ssvae": ..., "pixels": ...,
    "m1": ...}}, each entry a dict of test probabilities, accuracy and seconds."""
    m1, m1_history, m1_info = fit_m1(SSVAEConfig(seed=seed), refresh=refresh)
    runs = {"m1": (m1, m1_history, m1_info)}
    for n, draw in book_runs():
        config = SSVAEConfig(num_labels=n, draw=draw, seed=seed)
        ssvae, codes, history, _ = fit_ssvae(config, m1, refresh=refresh)
        probs = classify(ssvae, codes.test.loc.cpu())
        runs[n, draw] = {"ssvae": {"probs": probs, "history": history,
                                   "seconds": history["epoch_seconds"][-1]}}
        for features in NAMES:
            base_config = BaselineConfig(num_labels=n, draw=draw, features=features,
                                         seed=seed)
            _, base = fit_baseline(base_config, m1, refresh=refresh)
            runs[n, draw][features] = {"probs": base["test_probs"],
                                       "seconds": base["seconds"]}
        labels = codes.test.labels.cpu()
        for entry in runs[n, draw].values():
            entry["accuracy"] = metrics.accuracy(entry["probs"], labels)
    return runs


def cli_run(seed: int = 0, refresh: bool = False) -> dict:
    """Train (or load) every model of the chapter; return the test accuracies (mean
    over draws where there are several) and the training times."""
    runs = run_all(seed, refresh)
    names = {"ssvae": "SS-VAE (M1+M2)", **NAMES}
    accuracies = {(name, n): [runs[key][model]["accuracy"] for key in runs
                              if key != "m1" and key[0] == n]
                  for n in BOOK_LABELS for model, name in names.items()}
    m2_seconds = {n: runs[n, 0]["ssvae"]["seconds"] for n in BOOK_LABELS}
    return headline(accuracies, runs["m1"][2]["train_seconds"], m2_seconds)


def headline(accuracies: dict, m1_seconds: float, m2_seconds: dict) -> dict:
    """The chapter's headline numbers, as it records them for the results page and the
    CLI prints them: ``accuracies`` {(model name, labels): [test accuracy of each draw,
    a fraction]}, M1's training seconds and M2's {labels: seconds} of one run."""
    out = {"M1 train seconds (shared)": float(m1_seconds)}
    for (name, n), accs in accuracies.items():
        accs = torch.tensor(accs, dtype=torch.float64)
        out[f"{name} test accuracy, {n} labels"] = accs.mean().item()
        if len(accs) > 1:
            out[f"{name} test accuracy sd over {len(accs)} draws, {n} labels"] = \
                accs.std().item()
    for n, seconds in m2_seconds.items():
        out[f"SS-VAE (M1+M2) train seconds, {n} labels"] = float(seconds)
    return out
