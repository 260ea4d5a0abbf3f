"""How chapter 4's settings were chosen: train M2 (and the labelled-only baselines) with
a list of candidate settings and print their accuracy on the validation images only.

    .venv/bin/python bench/ssvae_select.py m2 hidden_dim=200 hidden_dim=300 alpha=0.03
    .venv/bin/python bench/ssvae_select.py baseline dropout=0 "dropout=0.5 lr=3e-3"

Each argument after the kind is one candidate, written as space-separated overrides of
the book's ``SSVAEConfig`` / ``BaselineConfig`` (100 labels, first draw, unless
overridden). M1 is the book's (from the cache, or trained once). The candidates train
in a temporary cache, so the book's own cache is left alone. Never reads the test set's
labels: it prints validation accuracy only.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import fields, replace

from bdl_src.runs import ssvae as runs
from bdl_src.ssvae import SSVAEConfig
from bdl_src.ssvae_baselines import BaselineConfig


def parse(config, text: str):
    """``config`` with the overrides ``"name=value name=value"`` applied."""
    types = {f.name: type(getattr(config, f.name)) for f in fields(config)}
    changes = {}
    for item in text.split():
        name, value = item.split("=")
        if name not in types:
            raise SystemExit(f"unknown setting {name!r}; one of {sorted(types)}")
        kind = types[name]
        changes[name] = value.lower() in ("1", "true") if kind is bool else kind(value)
    return replace(config, **changes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["m2", "baseline"])
    parser.add_argument("candidates", nargs="+")
    args = parser.parse_args()
    m1 = runs.fit_m1(SSVAEConfig())[0]  # the book's M1, from its cache
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["BDL_CACHE_DIR"] = tmp
        for text in args.candidates:
            if args.kind == "m2":
                config = parse(SSVAEConfig(), text)
                _, _, history, info = runs.fit_ssvae(config, m1)
                val = history["epoch_val_accuracy"][-1]
            else:
                config = parse(BaselineConfig(), text)
                _, result = runs.fit_baseline(config, m1)
                val = max(result["val_accuracy"])
                info = {"train_seconds": result["seconds"]}
            print(f"{text:40s} validation accuracy {100 * val:.2f} %  "
                  f"({info['train_seconds']:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
