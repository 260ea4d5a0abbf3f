"""Chapter 3's runs: the book's VAE trained through the cache, and its test-set numbers.

book/vae.md makes the same ``cached("vae", ...)`` call in plain sight and calls
``final_evaluation``; the CLI and the results page call ``cli_run``. All three share one
cache entry per model and one per evaluation.
"""

from __future__ import annotations

from dataclasses import asdict

import pyro
import torch

from bdl_src.cache import cached
from bdl_src.nets import mlp
from bdl_src.train import default_device, lr_decay, minibatches
from bdl_src.vae import (
    VAE,
    EvalConfig,
    VAEConfig,
    binarize,
    build,
    evaluate,
    load_data,
    log_weights,
    train,
)

# The binarised-data variant (set beside published log-likelihoods): the book's VAE on
# dynamically binarised images, with the settings bench/select_vae.py chose on a
# validation split, trained once with each guide (num_flows: 0 the Gaussian, 2 a flow),
# and scored with K = 5,000 draws on a seeded subset of the binarised test images.
BINARISED = VAEConfig(binarize=True, num_epochs=8)
BINARISED_FLOWS = {"Gaussian": 0, "flow (2 steps)": 2}
BINARISED_EVAL = EvalConfig(num_samples=5000, num_images=160)

# What the trained weights depend on besides ``train`` and the VAE's classes (the cache
# key covers those itself): the networks, the batches, the schedule and the monitor.
TRAIN_CODE = (mlp, minibatches, lr_decay, evaluate, log_weights)


def trained_vae(config: VAEConfig, refresh: bool = False
                ) -> tuple[VAE, torch.Tensor, dict, dict]:
    """Train the VAE of ``config`` (or load it from the cache) on this machine's device.

    Returns the VAE (with ``num_data`` set, on the device), the held-out images (on the
    device; binarised once, seeded, when ``config.binarize``), the history ``train``
    returned and the cache's ``info``.
    """
    device = default_device()
    train_data, heldout = load_data(config)
    x, held = train_data.images.to(device), heldout.images.to(device)
    if config.binarize:
        held = binarize(held, seed=config.seed)
    pyro.set_rng_seed(config.seed)  # the networks' initial weights
    vae = build(config, num_data=len(x)).to(device)
    history, info = cached("vae", config, train, vae, x, held, config,
                           code=TRAIN_CODE, refresh=refresh)
    return vae, held, history, info


def heldout_metrics(vae: VAE, held: torch.Tensor, eval_config: EvalConfig,
                    seed: int) -> dict:
    """The held-out ELBO and importance-sampled log-likelihood (``evaluate`` with K =
    ``eval_config.num_samples``) on every held-out image, or on a seeded random subset
    of ``eval_config.num_images`` (then with the numbers of every image, for paired
    comparisons of two models on the same images)."""
    if eval_config.num_images:
        gen = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(held), generator=gen)[:eval_config.num_images]
        held = held[pick.to(held.device)]
    return evaluate(vae, held, eval_config.num_samples, seed=seed,
                    per_image=bool(eval_config.num_images))


def final_evaluation(vae: VAE, held: torch.Tensor, config: VAEConfig,
                     eval_config: EvalConfig, refresh: bool = False
                     ) -> tuple[dict, dict]:
    """``heldout_metrics`` of the VAE trained with ``config``, computed once and cached
    (K = 100 draws for each of 10,000 images take tens of seconds on a CPU).

    Returns the metrics (``elbo``, ``log_likelihood``, in nats per image) and the
    cache's ``info`` (``train_seconds`` is the evaluation's time)."""
    key = {"vae": asdict(config), "eval": asdict(eval_config)}
    return cached("vae-eval", key, heldout_metrics, vae, held, eval_config, config.seed,
                  code=(train, *TRAIN_CODE), refresh=refresh, saves_state=False)


def cli_run(seed: int = 0, refresh: bool = False) -> dict:
    """Train (or load) the book's VAE and return its headline numbers."""
    config, eval_config = VAEConfig(seed=seed), EvalConfig()
    vae, held, history, info = trained_vae(config, refresh=refresh)
    metrics, eval_info = final_evaluation(vae, held, config, eval_config,
                                          refresh=refresh)
    return {
        "test negative ELBO (nats/image)": -metrics["elbo"],
        "test negative log-likelihood, importance-sampled": -metrics["log_likelihood"],
        "importance samples per image": eval_config.num_samples,
        "epochs": len(history["train_elbo"]),
        "SVI seconds": info["train_seconds"],
        "evaluation seconds": eval_info["train_seconds"],
        "from cache": info["from_cache"],
    }
