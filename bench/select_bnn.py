"""Chapter 2's selection sweep: every setting of the BNN and of the deterministic
baselines chosen on the MNIST validation split alone (no test image, no Fashion-MNIST
image), by validation NLL, with accuracy and ECE beside it.

    OMP_NUM_THREADS=1 .venv/bin/python bench/select_bnn.py [--quick]

Trains every candidate once (seed 0) outside the model cache and prints one row per
candidate (``--match TEXT`` runs only the candidates whose name contains TEXT). Takes
about 8 minutes on one CPU thread (about 31 s per BNN candidate). The chosen values are
the defaults of ``bnn.BNNConfig`` and ``baselines.NetConfig``; the page reruns the
winners over seeds and glues their validation numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bdl_src import baselines, bnn, metrics  # noqa: E402


def scores(sample_probs, labels) -> dict:
    p = sample_probs.mean(0)
    return {"val accuracy (%)": 100 * metrics.accuracy(p, labels),
            "val NLL": metrics.nll(p, labels),
            "val ECE (%)": 100 * metrics.ece(p, labels)}


def run_bnn(config, data) -> dict:
    x, y = data["train"].images, data["train"].labels
    model = bnn.BayesianMLP(round(len(x) / config.temperature), config.hidden_dim,
                            config.prior_scale, fan_in_prior=config.fan_in_prior)
    guide = bnn.MeanFieldGuide(model, config.init_scale,
                               torch.Generator().manual_seed(config.seed))
    start = time.perf_counter()
    bnn.train_bnn(model, guide, x, y, config)
    seconds = time.perf_counter() - start
    sp = bnn.predict_bnn(model, guide, data["val"].images, 20)
    off = (bnn.unit_kl(model, guide) < 0.01).double().mean().item()
    return {**scores(sp, data["val"].labels), "units off (%)": 100 * off,
            "seconds": seconds}


def run_net(config, data) -> dict:
    x, y = data["train"].images, data["train"].labels
    torch.manual_seed(config.seed)
    net = bnn.DeterministicMLP(config.hidden_dim, dropout=config.dropout)
    start = time.perf_counter()
    bnn.train_twin(net, x, y, config)
    seconds = time.perf_counter() - start
    if config.dropout:
        sp = baselines.predict_mc_dropout(net, data["val"].images, 20)
    else:
        sp = baselines.predict_scaled(net, data["val"].images)
    return {**scores(sp, data["val"].labels), "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true",
                        help="1 epoch each (a smoke test)")
    parser.add_argument("--match", default="",
                        help="run only the candidates whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = bnn.load_data()
    base, net = bnn.BNNConfig(), baselines.NetConfig()
    if args.quick:
        base, net = replace(base, num_epochs=1), replace(net, num_epochs=1)
    bnn_grid = [replace(base, fan_in_prior=f, prior_scale=c, temperature=t)
                for f, c in [(False, 1.0), (True, 1.0), (True, 2.0)]
                for t in (1.0, 0.1, 0.01)]
    bnn_grid += [replace(base, temperature=0.003)]
    bnn_grid += [replace(base, lr=lr) for lr in (3e-3, 3e-2)]
    net_grid = [replace(net, num_epochs=e, batch_size=256, lr=3e-3, lr_final=3e-5)
                for e in (2, 4, 6)]
    net_grid += [replace(net, batch_size=b, lr=lr, lr_final=1e-4)
                 for b, lr in [(128, 2e-3), (256, 3e-3), (1024, 1e-2)]]
    net_grid += [replace(net, dropout=p) for p in (0.1, 0.25)]
    print("candidate", "|", "val accuracy (%) | val NLL | val ECE (%) | units off | s",
          flush=True)
    for config in bnn_grid:
        name = (f"BNN prior {'c/sqrt(fan_in)' if config.fan_in_prior else 'sigma'}="
                f"{config.prior_scale} T={config.temperature} E={config.num_epochs} "
                f"lr={config.lr}")
        if args.match in name:
            print(name, {k: round(v, 4) for k, v in run_bnn(config, data).items()},
                  flush=True)
    for config in net_grid:
        name = (f"net dropout={config.dropout} E={config.num_epochs} "
                f"batch={config.batch_size} lr={config.lr}->{config.lr_final}")
        if args.match in name:
            print(name, {k: round(v, 4) for k, v in run_net(config, data).items()},
                  flush=True)

if __name__ == "__main__":
    main()
