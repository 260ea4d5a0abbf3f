"""Appendix "Scaling up": chapter 3's VAE trained in one process and in several, timed.

``measure(config)`` launches torchrun (``python -m torch.distributed.run --standalone
--nproc-per-node N -m bdl_src.scaling ...``) on this machine; every process runs this
module's ``main``, which runs the chapter's own ``vae.train`` inside
``distributed.data_parallel()`` (the one seam: a no-op for N = 1) and times it, and rank
0 reports the throughput. The measurement is cached (``cache.cached``, a computation
with no state to keep), so the book re-measures only when the code or the settings
change.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pandas as pd
import pyro
import torch

from bdl_src import distributed, nets, train, vae
from bdl_src.cache import cached

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ScalingConfig:
    """One timed run on this machine's CPU: the book's VAE on a slice of
    Fashion-MNIST."""

    num_processes: int = 1  # processes torchrun starts on this machine
    threads: int = 0  # CPU threads per process; 0: this machine's cores / processes
    num_train: int = 30000  # training images (the first ones)
    num_epochs: int = 2  # passes over them
    batch_size: int = 128  # images per step, over all processes (the chapter's)
    num_monitor: int = 100  # held-out images scored after each epoch
    seed: int = 0


def vae_config(config: ScalingConfig) -> vae.VAEConfig:
    """The chapter's VAE (its network, learning rates, batch) on fewer images/epochs."""
    return replace(vae.VAEConfig(), num_train=config.num_train,
                   num_epochs=config.num_epochs, batch_size=config.batch_size,
                   num_monitor=config.num_monitor, seed=config.seed)


def cpu_cores() -> int:
    """The CPU cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def threads_per_process(config: ScalingConfig) -> int:
    """Threads per process: by default the cores shared evenly, so that one process
    and several use the same machine."""
    return config.threads or max(1, cpu_cores() // config.num_processes)


def command(config: ScalingConfig, python: str = sys.executable) -> list[str]:
    """The command that runs ``config``: torchrun on this machine, this module in every
    process (with ``OMP_NUM_THREADS`` set to ``threads_per_process``, idle threads
    sleeping and the GPUs hidden: see ``command_line``)."""
    return [python, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={config.num_processes}", "-m", "bdl_src.scaling",
            json.dumps(asdict(config), separators=(",", ":"))]


def command_line(config: ScalingConfig) -> str:
    """``command`` as one would type it in a shell, from the repository root."""
    return (f"CUDA_VISIBLE_DEVICES= OMP_NUM_THREADS={threads_per_process(config)} "
            "OMP_WAIT_POLICY=PASSIVE " + shlex.join(command(config, python="python")))


def main(argv: list[str] | None = None) -> None:
    """One process of a timed run (started by torchrun): build the chapter's VAE as its
    page does, time ``vae.train`` inside ``data_parallel()``, then rank 0 prints the
    result as one JSON line."""
    config = vae_config(ScalingConfig(**json.loads((argv or sys.argv[1:])[0])))
    train_data, heldout = vae.load_data(config)
    x, held = train_data.images, heldout.images  # the CPU: the GPUs are hidden
    pyro.set_rng_seed(config.seed)  # the networks' initial weights
    model = vae.build(config, num_data=len(x))
    with distributed.data_parallel():  # one process: nothing changes
        distributed.barrier()  # every process has loaded its data: start together
        start = time.perf_counter()
        history = vae.train(model, x, held, config)
        seconds = time.perf_counter() - start
        backend = (torch.distributed.get_backend() if torch.distributed.is_initialized()
                   else "none (one process)")
    if distributed.is_main():
        print(json.dumps({
            "images_per_second": config.num_epochs * len(x) / seconds,
            "svi_seconds": seconds, **history,
            "processes": distributed.world_size(), "threads": torch.get_num_threads(),
            "backend": backend,
        }), flush=True)
    distributed.cleanup()


def run(config: ScalingConfig) -> dict:
    """Launch ``command(config)`` and return rank 0's result, with ``wall_seconds`` of
    the whole command (starting the processes and loading the data included)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env.update(CUDA_VISIBLE_DEVICES="",  # a measurement of the CPU, GPUs or not
               OMP_NUM_THREADS=str(threads_per_process(config)),
               # idle threads sleep rather than spin: fair if the CPU is busy
               OMP_WAIT_POLICY="PASSIVE",
               PYTHONPATH=os.pathsep.join(
                   [str(ROOT)] + env.get("PYTHONPATH", "").split(os.pathsep)))
    start = time.perf_counter()
    # stderr captured: torchrun's notices never reach the page
    done = subprocess.run(command(config), capture_output=True, text=True, env=env,
                          cwd=ROOT, check=False)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command(config)[1:6])} failed:\n"
                           f"{done.stderr[-3000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_seconds": wall}


# What a measurement depends on besides ``run``: the command, this module's ``main``,
# the chapter's training (its loop, networks, batches, schedule and monitor) and the
# data-parallel seam; all of ``distributed`` is that seam.
MEASURED_CODE = (command, threads_per_process, vae_config, main, vae.load_data,
                 vae.build, vae.train, vae.VAE, vae.Encoder, vae.Decoder, vae.evaluate,
                 vae.log_weights, nets.mlp, train.minibatches, train.lr_decay,
                 distributed)


def measure(config: ScalingConfig = ScalingConfig(), refresh: bool = False) -> dict:
    """Run ``config`` (or load its measurement from the cache) and return it: images per
    second of SVI, seconds, the ELBO per epoch, ``wall_seconds`` of the whole command
    (see ``run``) and ``from_cache``."""
    result, info = cached(f"scaling-{config.num_processes}proc", config, run, config,
                          code=MEASURED_CODE, refresh=refresh, saves_state=False)
    return {**result, "from_cache": info["from_cache"]}


def summary(runs: list[dict]) -> pd.DataFrame:
    """One row per measured run (``measure``'s dicts)."""
    return pd.DataFrame({
        "processes": [r["processes"] for r in runs],
        "threads per process": [r["threads"] for r in runs],
        "backend": [r["backend"] for r in runs],
        "images per second": [round(r["images_per_second"]) for r in runs],
        "SVI seconds": [round(r["svi_seconds"], 2) for r in runs],
        "command seconds": [round(r["wall_seconds"], 1) for r in runs],
        "last epoch's negative ELBO": [round(-r["train_elbo"][-1], 1) for r in runs],
    }).set_index("processes")


if __name__ == "__main__":
    main()
