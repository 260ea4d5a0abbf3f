"""The one SVI training loop every chapter uses.

``run_svi`` clears Pyro's parameter store, seeds every generator, and steps
``pyro.infer.SVI`` over a full batch or shuffled mini-batches. It returns a
:class:`TrainLog` with the loss of every step and the mean loss of every epoch. It prints
nothing: a tqdm progress bar appears only when stderr is a terminal, never inside the book.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from tqdm import tqdm


@dataclass
class TrainLog:
    """Loss per step and mean loss per epoch (the negative ELBO, as Pyro reports it)."""

    losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def default_device() -> torch.device:
    """CUDA when present, else the CPU: the same code runs on both."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def show_progress() -> bool:
    """True on an interactive terminal; False inside a notebook, the book build or CI."""
    return sys.stderr.isatty() and "ipykernel" not in sys.modules


def minibatches(tensors: Sequence[torch.Tensor], batch_size: int | None,
                generator: torch.Generator):
    """Yield tuples of aligned slices in a fresh random order (or the full batch)."""
    n = len(tensors[0])
    if batch_size is None or batch_size >= n:
        yield tuple(tensors)
        return
    order = torch.randperm(n, generator=generator).to(tensors[0].device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def run_svi(model: Callable, guide: Callable, data: Sequence[torch.Tensor], *,
            optim: pyro.optim.PyroOptim, loss: pyro.infer.ELBO | None = None,
            num_epochs: int = 1, num_steps: int | None = None,
            batch_size: int | None = None, seed: int = 0, desc: str = "SVI",
            epoch_callback: Callable[[int, TrainLog], None] | None = None) -> TrainLog:
    """Fit ``guide`` to ``model`` by stochastic variational inference.

    Each step calls ``svi.step(*batch)`` where ``batch`` slices every tensor in ``data``.
    With ``num_steps`` the full batch is used ``num_steps`` times (one "epoch"); otherwise
    ``num_epochs`` passes over shuffled mini-batches of ``batch_size``. Models that see
    mini-batches must scale their likelihood to the full data set themselves.
    Raises ``FloatingPointError`` as soon as a loss is NaN or infinite.
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    svi = SVI(model, guide, optim, loss=loss or Trace_ELBO())
    if num_steps is not None:
        num_epochs, per_epoch = 1, num_steps
    else:
        n = len(data[0])
        per_epoch = 1 if batch_size is None else math.ceil(n / batch_size)
    log = TrainLog()
    start = time.perf_counter()
    with tqdm(total=num_epochs * per_epoch, desc=desc, disable=not show_progress(),
              dynamic_ncols=True) as bar:
        for epoch in range(num_epochs):
            if num_steps is not None:
                batches = (tuple(data) for _ in range(num_steps))
            else:
                batches = minibatches(data, batch_size, generator)
            epoch_losses = []
            for batch in batches:
                value = svi.step(*batch)
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"{desc}: the loss became {value} at step {len(log.losses) + 1} "
                        f"(epoch {epoch + 1}); lower the learning rate or check the "
                        "model's scales."
                    )
                log.losses.append(value)
                epoch_losses.append(value)
                bar.update()
                if len(log.losses) % 25 == 0:
                    bar.set_postfix(loss=f"{value:.4g}")
            log.epoch_losses.append(sum(epoch_losses) / len(epoch_losses))
            if epoch_callback is not None:
                epoch_callback(epoch, log)
    log.seconds = time.perf_counter() - start
    return log
