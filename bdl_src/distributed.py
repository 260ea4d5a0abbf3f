"""Data parallelism with ``torch.distributed``: the one module that knows about it.

The chapters' training loops are plain Pyro, the same for one process and many. Launched
by torchrun (``torchrun --nproc-per-node 2 -m bdl_src train vae``, or ``python -m
bdl_src train vae --nproc-per-node 2``), the CLI runs them inside ``data_parallel()``,
which changes three things from outside, and only while it is active:

* ``SVI.step`` takes this process's share of every tensor it is given (the batches are
  drawn alike in every process), averages the gradients over the processes before Pyro's
  optimiser steps (one all-reduce per step), and returns the loss averaged over them.
  The models scale a mini-batch to the whole data set by the batch they see, so the
  averaged gradient estimates the full ELBO's. Each process samples its own noise.
* the checkpoint cache (``bdl_src.cache.POLICY``): an entry is loaded only if every
  process finds it, only rank 0 writes, and the key includes the number of processes.
* progress bars show in rank 0 only.

Plain-PyTorch loops (chapter 2's deterministic twin, chapter 4's baselines, a few
seconds each) are not sharded: every process trains its own copy, alike.
Without torchrun (``WORLD_SIZE`` unset or 1) nothing here changes anything.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta

import pyro
import torch
import torch.distributed as dist
from pyro import poutine
from pyro.infer.util import zero_grads

from bdl_src import cache, train


def world_size() -> int:
    """How many processes train together (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's index among all of them, 0 to ``world_size() - 1``."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    """This process's index on its own machine: which GPU it uses."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_distributed() -> bool:
    return world_size() > 1


def is_main() -> bool:
    """True in the one process that prints, shows progress and writes the cache."""
    return rank() == 0


def device() -> torch.device:
    """The device of this process: its own GPU (by local rank) when there are GPUs."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    if not is_distributed():
        return torch.device("cuda")
    if local_rank() >= torch.cuda.device_count():
        raise RuntimeError(
            f"process {local_rank()} of this machine has no GPU of its own (there are "
            f"{torch.cuda.device_count()}): start one process per GPU "
            "(--nproc-per-node gpu), or hide the GPUs (CUDA_VISIBLE_DEVICES=) to "
            "train on the CPU")
    return torch.device("cuda", local_rank())


def setup() -> None:
    """Join the process group torchrun set up (once; a no-op in a single process)."""
    if not is_distributed() or dist.is_initialized():
        return
    if device().type == "cuda":
        torch.cuda.set_device(device())
    dist.init_process_group("nccl" if device().type == "cuda" else "gloo",
                            timeout=timedelta(minutes=30))


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if is_distributed():
        setup()
        dist.barrier()


def rank_seed(seed: int) -> int:
    """A different seed per process for the noise of the ELBO estimates (the data order
    is drawn from ``seed`` itself, alike in every process). Rank 0 keeps ``seed``."""
    return seed + 1_000_003 * rank()


def mean(value: float) -> float:
    """The average of ``value`` over the processes (a loss for the log)."""
    if not is_distributed():
        return value
    setup()
    t = torch.tensor([value], dtype=torch.float64, device=device())
    dist.all_reduce(t)
    return t.item() / world_size()


def all_true(flag: bool) -> bool:
    """True if ``flag`` holds in every process (e.g. every process finds a cache
    entry)."""
    if not is_distributed():
        return flag
    setup()
    t = torch.tensor([int(flag)], device=device())
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def broadcast(obj):
    """Rank 0's ``obj`` in every process (a small JSON-able object)."""
    if not is_distributed():
        return obj
    setup()
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share(tensor: torch.Tensor) -> torch.Tensor:
    """This process's part of a tensor that every process holds alike: the first
    dimension cut into ``world_size()`` nearly equal contiguous parts, part ``rank()``.
    Scalars and tensors with fewer rows than processes are shared whole."""
    if not is_distributed() or tensor.dim() == 0 or len(tensor) < world_size():
        return tensor
    return torch.tensor_split(tensor, world_size())[rank()]


def _all_reduce_mean(tensors: list[torch.Tensor]) -> None:
    """Average ``tensors`` in place over the processes, in one flat all-reduce."""
    flat = torch.cat([t.reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= world_size()
    offset = 0
    for t in tensors:
        t.copy_(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()


def _params(trace) -> dict[str, torch.Tensor]:
    """The unconstrained parameters a traced step used, by name (the same order in
    every process)."""
    return {name: site["value"].unconstrained() for name, site in
            sorted(trace.nodes.items()) if site["type"] == "param"}


def make_step(shard: bool = True):
    """``SVI.step`` for one process of a data-parallel run (see the module
    docstring)."""

    def step(svi, *args, **kwargs):
        if shard:
            args = tuple(share(a) if isinstance(a, torch.Tensor) else a for a in args)
        if not getattr(svi, "_data_parallel_ready", False):
            # Create the parameters, give every process rank 0's values, then let each
            # process draw its own noise.
            # (with gradients: some losses refuse to run without them)
            with poutine.trace(param_only=True) as tr:
                svi.loss(svi.model, svi.guide, *args, **kwargs)
            for p in _params(tr.trace).values():
                with torch.no_grad():
                    dist.broadcast(p.data, src=0)
            pyro.set_rng_seed(rank_seed(torch.initial_seed()))
            svi._data_parallel_ready = True
        with poutine.trace(param_only=True) as tr:
            loss = svi.loss_and_grads(svi.model, svi.guide, *args, **kwargs)
        params = list(_params(tr.trace).values())
        for p in params:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        with torch.no_grad():
            _all_reduce_mean([p.grad for p in params])
        svi.optim(params)
        zero_grads(params)
        return mean(float(loss))

    return step


class DistributedPolicy(cache.LocalPolicy):
    """The cache in a data-parallel run: found only if found by all, written by rank 0
    (every process gets its metadata), keyed by the number of processes."""

    def __init__(self):
        self.key_extra = {"world_size": world_size()}

    def agree(self, found: bool) -> bool:
        return all_true(found)

    def writes(self) -> bool:
        return is_main()

    def share(self, meta: dict) -> dict:
        return broadcast(meta)


@contextmanager
def data_parallel(shard: bool = True):
    """Train data-parallel inside this block when torchrun started several processes
    (a no-op otherwise). ``shard=False`` for full-batch models whose likelihood is not
    scaled by the batch (chapter 1): every process then uses all the data, and the
    averaged gradient only has less noise."""
    if not is_distributed():
        yield
        return
    setup()
    saved = pyro.infer.SVI.step, cache.POLICY, train.show_progress
    pyro.infer.SVI.step = make_step(shard)
    cache.POLICY = DistributedPolicy()
    if not is_main():
        train.show_progress = lambda: False
    try:
        yield
    finally:
        pyro.infer.SVI.step, cache.POLICY, train.show_progress = saved
