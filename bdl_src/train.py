"""The one SVI training loop every chapter uses.

``run_svi`` clears Pyro's parameter store, seeds every generator, and steps
``pyro.infer.SVI`` over a full batch or shuffled mini-batches. It returns a
:class:`TrainLog` with the loss of every step and the mean loss of every epoch. It prints
nothing: a tqdm progress bar appears only when stderr is a terminal, never inside the book.

The same loop runs data-parallel when launched by torchrun (``bdl_src.distributed``):
every process takes its share of each mini-batch, ``svi_step`` lets
``DistributedDataParallel`` average the gradients, and only rank 0 shows progress.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pyro
import torch
from pyro import poutine
from pyro.infer import ELBO, SVI, Trace_ELBO
from pyro.infer.util import zero_grads
from torch import nn
from tqdm import tqdm

from bdl_src import distributed


@dataclass
class TrainLog:
    """Loss per step and mean loss per epoch (the negative ELBO, as Pyro reports it)."""

    losses: list[float] = field(default_factory=list)
    epoch_losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def default_device() -> torch.device:
    """CUDA when present, else the CPU: the same code runs on both. Under torchrun,
    each process's own GPU."""
    return distributed.device()


def show_progress() -> bool:
    """True on an interactive terminal, in the main process; False inside a notebook,
    the book build, CI or the other processes of a distributed run."""
    return sys.stderr.isatty() and "ipykernel" not in sys.modules and distributed.is_main()


def num_batches(n: int, batch_size: int) -> int:
    """Mini-batches per epoch: ceil(n / batch_size), less a last batch too small to
    give every process of a distributed run at least one example."""
    full, rest = divmod(n, batch_size)
    return full + (rest >= distributed.world_size())


def check_finite(value: float, desc: str, step: int, epoch: int,
                 cause: Exception | None = None) -> None:
    """Raise ``FloatingPointError`` with a clear message if a loss is NaN or inf."""
    if not math.isfinite(value):
        raise FloatingPointError(
            f"{desc}: the loss became {value} at step {step} (epoch {epoch}); lower "
            "the learning rate or check the model's scales.") from cause


def minibatches(tensors: Sequence[torch.Tensor], batch_size: int | None,
                generator: torch.Generator):
    """Yield tuples of aligned slices in a fresh random order (or the full batch).

    In a distributed run every process draws the same order and keeps its share of each
    batch; the full batch (``batch_size=None``) goes whole to every process.
    """
    n = len(tensors[0])
    if batch_size is None or batch_size >= n:
        yield tuple(tensors)
        return
    order = torch.randperm(n, generator=generator).to(tensors[0].device)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if len(idx) < distributed.world_size():
            continue  # too few to share: skipped by every process alike
        idx = distributed.shard(idx)
        yield tuple(t[idx] for t in tensors)


class ELBOModule(nn.Module):
    """The SVI objective as a module, so that ``DistributedDataParallel`` can wrap it:
    ``forward(*batch)`` is the differentiable loss of ``model`` and ``guide``, and the
    module's parameters are the Pyro parameters that loss uses (like Pyro's own
    ``pyro.infer.elbo.ELBOModule``, which needs model and guide to be modules)."""

    def __init__(self, model: Callable, guide: Callable, loss: Callable,
                 params: Sequence[nn.Parameter]):
        super().__init__()
        self.params = nn.ParameterList(params)
        # Plain attributes, not submodules: the parameters are exactly ``params``.
        self.__dict__["fns"] = (model, guide, loss)

    def forward(self, *batch):
        model, guide, loss = self.fns
        return loss(model, guide, *batch)


def pyro_parameters(model: Callable, guide: Callable, loss: Callable,
                    batch: Sequence) -> list[nn.Parameter]:
    """Create every Pyro parameter the loss of ``batch`` uses and return them as
    ``nn.Parameter`` objects that Pyro's param store holds (``pyro.param`` tensors
    become ``nn.Parameter``s, keeping their values), ready to be wrapped by DDP."""
    with poutine.trace(param_only=True) as tr:
        loss(model, guide, *batch)  # (some losses refuse to run without gradients)
    store, params = pyro.get_param_store(), []
    for name, site in tr.trace.nodes.items():
        value = site["value"].unconstrained()
        if not isinstance(value, nn.Parameter):
            value = nn.Parameter(value.detach())
            store.set_state({"params": {name: value}, "constraints": {}})
        params.append(value)
    return params


class DistributedSVIStep:
    """``svi.step`` for a data-parallel run: the loss of this process's share of the
    batch, gradients averaged over all processes by ``DistributedDataParallel``, then
    Pyro's optimiser. Returns the loss averaged over the processes.

    On the first call it creates the parameters, wraps them (DDP copies rank 0's values
    to every process) and seeds each process's sampling noise differently."""

    def __init__(self, model, guide, optim: pyro.optim.PyroOptim, loss, seed: int):
        self.model, self.guide, self.optim, self.seed = model, guide, optim, seed
        self.loss = loss.differentiable_loss if isinstance(loss, ELBO) else loss
        self.module = self.params = None

    def __call__(self, *batch) -> float:
        if self.module is None:
            self.params = pyro_parameters(self.model, self.guide, self.loss, batch)
            self.module = distributed.wrap(
                ELBOModule(self.model, self.guide, self.loss, self.params))
            pyro.set_rng_seed(distributed.rank_seed(self.seed))
        loss = self.module(*batch)
        loss.backward()  # DDP: gradients averaged over the processes
        self.optim(self.params)
        zero_grads(self.params)
        return distributed.mean(loss.item())


def svi_step(model: Callable, guide: Callable, optim: pyro.optim.PyroOptim, loss,
             seed: int = 0) -> Callable[..., float]:
    """One SVI step, ``step(*batch) -> loss``: ``SVI(...).step`` in a single process;
    ``DistributedSVIStep`` under torchrun. ``loss`` is an ELBO or, as ``SVI`` accepts,
    a callable ``loss(model, guide, *batch)`` returning a differentiable scalar."""
    if distributed.is_distributed():
        return DistributedSVIStep(model, guide, optim, loss, seed)
    return SVI(model, guide, optim, loss=loss).step


def run_svi(model: Callable, guide: Callable, data: Sequence[torch.Tensor], *,
            optim: pyro.optim.PyroOptim, loss: pyro.infer.ELBO | None = None,
            num_epochs: int = 1, num_steps: int | None = None,
            batch_size: int | None = None, seed: int = 0, desc: str = "SVI",
            epoch_callback: Callable[[int, TrainLog], None] | None = None) -> TrainLog:
    """Fit ``guide`` to ``model`` by stochastic variational inference.

    Each step is ``svi_step(...)(*batch)``, ``batch`` slicing every tensor in ``data``.
    With ``num_steps`` the full batch is used ``num_steps`` times (one "epoch"); otherwise
    ``num_epochs`` passes over shuffled mini-batches of ``batch_size``. Models that see
    mini-batches must scale their likelihood to the full data set themselves: in a
    distributed run each process sees its share of a batch and its model scales it to
    the full data set just the same, so the averaged gradient estimates the full ELBO's.
    ``batch_size`` is the batch of one step, over all processes. The losses logged are
    averaged over the processes. Raises ``FloatingPointError`` as soon as a loss is NaN
    or infinite.
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    step = svi_step(model, guide, optim, loss or Trace_ELBO(), seed)
    if num_steps is not None:
        num_epochs, per_epoch = 1, num_steps
    else:
        n = len(data[0])
        per_epoch = 1 if batch_size is None or batch_size >= n else \
            num_batches(n, batch_size)
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
                value = step(*batch)
                check_finite(value, desc, len(log.losses) + 1, epoch + 1)
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
