"""Command line: train (or load from the cache) each chapter's model and print its metrics.

    python -m bdl_src --help
    python -m bdl_src list
    python -m bdl_src train regression [--seed 0] [--refresh]

Each chapter module that the CLI can train defines ``cli_run(seed, refresh)``: it trains
or loads the chapter's models with their book configuration (progress bar on a terminal)
and returns the headline metrics as a dict.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

# name -> (module, what it trains)
MODELS = {
    "regression": ("bdl_src.regression", "ch. 1: Bayesian linear regression (toy data)"),
    "bnn": ("bdl_src.bnn", "ch. 2: Bayesian neural network on MNIST"),
    "vae": ("bdl_src.vae", "ch. 3: variational autoencoder on Fashion-MNIST"),
    "ssvae": ("bdl_src.ssvae", "ch. 4: semi-supervised VAE (M2) on MNIST"),
}


def available() -> dict[str, str]:
    """The models whose module exists in this checkout."""
    return {name: text for name, (module, text) in MODELS.items()
            if importlib.util.find_spec(module) is not None}


def parser() -> argparse.ArgumentParser:
    models = available()
    p = argparse.ArgumentParser(
        prog="python -m bdl_src",
        description="Train the models of Pyro Demystified and print their metrics. "
                    "Trained models are cached (.model_cache/ or $BDL_CACHE_DIR) and "
                    "shared with the book build.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("list", help="list the models this command can train")
    t = sub.add_parser("train", help="train a model (or load it from the cache) and "
                                     "print its headline metrics",
                       description="Models: " + "; ".join(f"{k} ({v})"
                                                          for k, v in models.items()))
    t.add_argument("model", choices=sorted(models), help="which model")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0, as the "
                                                       "book)")
    t.add_argument("--refresh", action="store_true",
                   help="retrain even if the cache holds this model")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "list":
        for name, text in available().items():
            print(f"{name:12s} {text}")
        return 0
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(MODELS[args.model][0])
    metrics = module.cli_run(seed=args.seed, refresh=args.refresh)
    width = max(map(len, metrics))
    for key, value in metrics.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
