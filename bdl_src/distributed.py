"""Data parallelism with ``torch.distributed``: the glue between torchrun and the SVI loop.

Launched by torchrun (``torchrun --nproc-per-node 2 -m bdl_src train vae``, or
``python -m bdl_src train vae --nproc-per-node 2``), every process reads its rank from the
environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``), joins the process
group (gloo on CPUs, NCCL on GPUs) and takes its share of every mini-batch. Gradients are
averaged by ``torch.nn.parallel.DistributedDataParallel`` (see ``train.svi_step``).

Without torchrun (``WORLD_SIZE`` unset or 1) every function here is a no-op: the
single-process path draws the same random numbers and computes the same bits as before.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist


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
            f"{torch.cuda.device_count()}): start one process per GPU (--nproc-per-node "
            "gpu), or hide the GPUs (CUDA_VISIBLE_DEVICES=) to train on the CPU")
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


def shard(index: torch.Tensor) -> torch.Tensor:
    """This process's share of a batch of indices that every process drew alike.

    The batch is cut into ``world_size()`` nearly equal contiguous parts; process r takes
    part r. Every process must get at least one index: callers skip batches with fewer
    indices than processes (see ``train.minibatches``).
    """
    if not is_distributed():
        return index
    if len(index) < world_size():
        raise ValueError(f"a batch of {len(index)} cannot be shared by {world_size()} "
                         "processes")
    return torch.tensor_split(index, world_size())[rank()]


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
    """True if ``flag`` holds in every process (e.g. every process finds a cache entry)."""
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


def wrap(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` inside ``DistributedDataParallel``: its parameters start from rank 0's
    values, and every backward pass averages their gradients over the processes.
    Returned unchanged in a single process."""
    if not is_distributed():
        return module
    setup()
    dev = device()
    return torch.nn.parallel.DistributedDataParallel(
        module, device_ids=[dev.index] if dev.type == "cuda" else None)
