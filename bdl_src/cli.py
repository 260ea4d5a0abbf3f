"""Command line: train (or load from the cache) each chapter's model and print its
metrics.

    python -m bdl_src --help
    python -m bdl_src list
    python -m bdl_src train regression [--seed 0] [--refresh]
    python -m bdl_src train vae --nproc-per-node 2           # data-parallel, torchrun
    torchrun --standalone --nproc-per-node 2 -m bdl_src train vae    # the same

Each module of ``bdl_src.runs`` defines ``cli_run(seed, refresh)``: it trains or loads
the chapter's models with their book configuration (progress bar on a terminal) and
returns the headline metrics as a dict. Expected failures (missing or corrupt data, an
unwritable cache folder, a loss that became NaN) print one line and exit with status 1;
``--verbose`` shows the traceback too.

With ``--nproc-per-node`` (and ``--nnodes``, ``--rdzv-endpoint`` for several machines)
the command hands over to torchrun's own entry point, ``torch.distributed.run``, which
starts one process per GPU (or the number given) running ``python -m bdl_src train
...``; they train together inside ``distributed.data_parallel()``, and only rank 0
prints and writes the cache.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import sys

from bdl_src import distributed
from bdl_src.cache import CacheError
from bdl_src.data import DatasetError

# name -> (module of its runs, what it trains)
MODELS = {
    "regression": ("bdl_src.runs.regression",
                   "ch. 1: Bayesian linear regression (toy data)"),
    "bnn": ("bdl_src.runs.bnn", "ch. 2: Bayesian neural network on MNIST"),
    "vae": ("bdl_src.runs.vae", "ch. 3: variational autoencoder on Fashion-MNIST"),
    "ssvae": ("bdl_src.runs.ssvae", "ch. 4: semi-supervised VAE (M1+M2) on MNIST"),
}
# Full-batch models whose likelihood is not scaled by the batch: under torchrun every
# process uses all the data (see distributed.data_parallel).
FULL_BATCH = {"regression"}
# Failures a user can fix: reported in one line, without a traceback.
EXPECTED = (DatasetError, CacheError, FloatingPointError, OSError)


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
    t.add_argument("--verbose", action="store_true",
                   help="on an error, show the full traceback too")
    d = t.add_argument_group(
        "data-parallel training (torchrun's options; see the book's 'Scaling up')")
    d.add_argument("--nproc-per-node", metavar="N",
                   help="processes on this machine: a number, or 'gpu' (one per GPU), "
                        "'cpu' or 'auto'; launches torchrun")
    d.add_argument("--nnodes", default="1", metavar="N",
                   help="machines taking part (default 1); each runs this same command")
    d.add_argument("--rdzv-endpoint", metavar="HOST:PORT",
                   help="where the machines meet: a free port on one of them (needed "
                        "with --nnodes > 1)")
    return p


def launch(args: argparse.Namespace) -> int:
    """Hand over to torchrun (``torch.distributed.run``), which starts the processes
    and runs ``python -m bdl_src train MODEL`` in each of them."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    argv = [f"--nproc-per-node={args.nproc_per_node or 1}", f"--nnodes={args.nnodes}"]
    if args.rdzv_endpoint:
        argv += ["--rdzv-backend=c10d", f"--rdzv-endpoint={args.rdzv_endpoint}",
                 f"--rdzv-id=bdl-{args.model}"]
    else:
        argv += ["--standalone"]  # one machine, a free port
    argv += ["-m", "bdl_src", "train", args.model, "--seed", str(args.seed)]
    argv += ["--refresh"] if args.refresh else []
    try:
        torchrun.main(argv)
    except ChildFailedError as err:
        print(f"distributed training failed: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.command == "list":
        for name, text in available().items():
            print(f"{name:12s} {text}")
        return 0
    launched = "TORCHELASTIC_RUN_ID" in os.environ or "LOCAL_RANK" in os.environ
    if args.nproc_per_node or args.nnodes != "1" or args.rdzv_endpoint:
        if launched:
            p.error("already running under torchrun: drop --nproc-per-node, --nnodes "
                    "and --rdzv-endpoint")
        if args.nnodes != "1" and not args.rdzv_endpoint:
            p.error("several machines (--nnodes) need --rdzv-endpoint HOST:PORT")
        return launch(args)
    distributed.setup()  # a no-op unless torchrun started several processes
    main_process = distributed.is_main()
    logging.basicConfig(level=logging.INFO if main_process else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    module = importlib.import_module(MODELS[args.model][0])
    try:
        with distributed.data_parallel(shard=args.model not in FULL_BATCH):
            metrics = module.cli_run(seed=args.seed, refresh=args.refresh)
    except EXPECTED as err:
        if args.verbose:
            logging.getLogger(__name__).exception("training %s failed", args.model)
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        distributed.cleanup()
    if not main_process:
        return 0
    if distributed.is_distributed():
        metrics["processes (data-parallel)"] = distributed.world_size()
    width = max(map(len, metrics))
    for key, value in metrics.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
