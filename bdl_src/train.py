"""Small helpers every chapter's training loop uses; the loops themselves are in the
chapter modules, written as plain Pyro (``svi = SVI(...)``, ``svi.step(...)``).

Nothing here knows about caching or data parallelism: ``bdl_src.cache.cached`` and
``bdl_src.distributed.data_parallel`` wrap the loops from outside.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence

import torch
from tqdm import tqdm


def default_device() -> torch.device:
    """CUDA when present, else the CPU: the same code runs on both."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def show_progress() -> bool:
    """True on an interactive terminal; False inside a notebook, the book build or
    CI."""
    return sys.stderr.isatty() and "ipykernel" not in sys.modules


def progress(iterable: Iterable | None = None, total: int | None = None,
             desc: str = "") -> tqdm:
    """The one progress bar of the book's training loops: shown only on a terminal
    (``show_progress``), silent inside the book."""
    return tqdm(iterable, total=total, desc=desc, disable=not show_progress(),
                dynamic_ncols=True, leave=False)


def lr_decay(lr: float, final_lr: float, num_updates: int) -> float:
    """The factor that takes a learning rate from ``lr`` to ``final_lr`` in
    ``num_updates`` geometric steps: the book's one learning-rate schedule."""
    return (final_lr / lr) ** (1 / max(num_updates, 1))


def check_finite(value: float, desc: str, step: int, epoch: int = 1,
                 cause: Exception | None = None) -> None:
    """Raise ``FloatingPointError`` with a clear message if a loss is NaN or inf."""
    if not math.isfinite(value):
        raise FloatingPointError(
            f"{desc}: the loss became {value} at step {step} (epoch {epoch}); lower "
            "the learning rate or check the model's scales.") from cause


def num_batches(n: int, batch_size: int | None) -> int:
    """Mini-batches per epoch: ceil(n / batch_size), 1 for the full batch."""
    return 1 if batch_size is None or batch_size >= n else math.ceil(n / batch_size)


def minibatches(tensors: Sequence[torch.Tensor], batch_size: int | None,
                generator: torch.Generator):
    """Yield tuples of aligned slices of ``tensors`` in a fresh random order drawn
    from ``generator`` (or the full batch once, when ``batch_size`` is None)."""
    n = len(tensors[0])
    if batch_size is None or batch_size >= n:
        yield tuple(tensors)
        return
    order = torch.randperm(n, generator=generator).to(tensors[0].device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def cycle_batches(num: int, batch_size: int, generator: torch.Generator):
    """Endless index batches over ``num`` items, reshuffled on every pass (a last
    batch smaller than ``batch_size`` is dropped)."""
    while True:
        order = torch.randperm(num, generator=generator)
        for start in range(0, num - batch_size + 1, batch_size):
            yield order[start:start + batch_size]
