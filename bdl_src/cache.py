"""Checkpoint cache: train a model once per configuration, load it on every later build.

An entry is one safetensors file named by a key over the model's name, its configuration,
the source code of the modules that define and train it, and the torch and Pyro versions.
Files are written to a temporary name and renamed, so an interrupted run never leaves a
half-written entry; a digest of the tensors is stored beside them, and an entry that does
not load or does not match its digest is retrained. Nothing is ever unpickled.

In a distributed run (torchrun) every process trains, but only rank 0 writes the entry;
the key then includes the number of processes, whose data order differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType

import pyro
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from bdl_src import distributed

CACHE_ENV = "BDL_CACHE_DIR"
REPO_CACHE = Path(__file__).resolve().parent.parent / ".model_cache"
log = logging.getLogger(__name__)

State = dict[str, torch.Tensor]


def cache_dir() -> Path:
    """``$BDL_CACHE_DIR`` if set, else ``.model_cache/`` at the repository root."""
    return Path(os.environ.get(CACHE_ENV) or REPO_CACHE)


def cache_key(name: str, config, code: Iterable[ModuleType], world_size: int = 1) -> str:
    """A hex digest over the name, the config (a dataclass), the code and the versions,
    and the number of processes that train together if more than one."""
    h = hashlib.sha256()
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    if world_size > 1:
        cfg = {"config": cfg, "world_size": world_size}
    h.update(json.dumps([name, cfg, torch.__version__, pyro.__version__],
                        sort_keys=True, default=str).encode())
    for module in code:
        h.update(inspect.getsource(module).encode())
    return h.hexdigest()[:20]


def _digest(state: State) -> str:
    h = hashlib.sha256()
    for key in sorted(state):
        h.update(key.encode())
        h.update(state[key].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def save_entry(path: Path, state: State, meta: dict) -> None:
    """Write ``state`` and JSON ``meta`` atomically (temporary file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    header = {"meta": json.dumps(meta), "digest": _digest(tensors)}
    try:
        save_file(tensors, str(tmp), metadata=header)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def load_entry(path: Path) -> tuple[State, dict]:
    """Read an entry; raise ``ValueError`` if it is truncated, corrupt or tampered with."""
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
        state = load_file(str(path))
    except Exception as err:  # safetensors raises several types for a damaged file
        raise ValueError(f"cannot read {path}: {err}") from err
    if "digest" not in header or _digest(state) != header["digest"]:
        raise ValueError(f"{path} does not match its stored digest")
    return state, json.loads(header["meta"])


def _remove_orphans(path: Path) -> None:
    """Delete temporary files of ``path`` left by writers that were killed (SIGKILL).
    They are never loaded; this only reclaims their space."""
    for tmp in path.parent.glob(f"{path.name}.tmp-*"):
        try:
            os.kill(int(tmp.name.rsplit("-", 1)[1]), 0)  # is the writer still running?
        except (ValueError, ProcessLookupError):
            tmp.unlink(missing_ok=True)
        except PermissionError:  # alive, owned by another user
            pass


def fit_or_load(name: str, config, fit: Callable[[], tuple[State, dict]], *,
                code: Iterable[ModuleType], refresh: bool = False) -> tuple[State, dict]:
    """Return ``(state, meta)`` from the cache, or call ``fit()`` and cache its result.

    ``fit`` returns the tensors to keep and a JSON-able dict (loss history, metrics).
    ``meta`` gains ``train_seconds`` (time spent in ``fit``), ``config`` (so that an
    entry says what it holds) and ``from_cache``.

    Distributed (torchrun): the entry is loaded only if every process finds it (on
    several machines, point ``$BDL_CACHE_DIR`` at a shared folder); otherwise every
    process runs ``fit`` (training together), rank 0 writes the entry, and every process
    returns its own tensors (equal to rank 0's: DDP keeps them so) with rank 0's
    ``meta`` (its clocks and evaluation), sent to the others once the entry is written.
    """
    world, code = distributed.world_size(), list(code)
    if world > 1:
        code.append(distributed)
    path = cache_dir() / f"{name}-{cache_key(name, config, code, world)}.safetensors"
    if distributed.is_main():
        _remove_orphans(path)
    entry = None
    if path.exists() and not refresh:
        try:
            entry = load_entry(path)
        except ValueError as err:
            log.warning("retraining %s: corrupt cache entry (%s)", name, err)
    if distributed.all_true(entry is not None):
        state, meta = entry
        return state, {**meta, "from_cache": True}
    start = time.perf_counter()
    state, meta = fit()
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config
    meta = {**meta, "train_seconds": time.perf_counter() - start,
            "config": json.loads(json.dumps(cfg, default=str))}
    if distributed.is_main():
        save_entry(path, state, meta)
    meta = distributed.broadcast(meta)
    return state, {**meta, "from_cache": False}


def guide_state(guide) -> State:
    """The trained variational parameters: a module's state dict, else the param store's
    (constrained) values."""
    if isinstance(guide, torch.nn.Module):
        return {k: v.detach().clone() for k, v in guide.state_dict().items()}
    return {k: v.detach().clone() for k, v in pyro.get_param_store().items()}


def restore_guide(guide, state: State, *args, **kwargs):
    """Return ``guide`` with the trained values ``state`` (from ``guide_state``) restored.

    Parameters live in Pyro's global param store, which the next fit clears and whose
    names two fits may share (two ``AutoNormal`` guides both own ``AutoNormal.locs.x``).
    So the guide is restored inside a private store, and the callable returned runs the
    guide inside that store (``ParamStoreDict.scope``): each fitted guide keeps its own
    values however many other fits come after it. ``args`` are one call's arguments, used
    once to create the parameters with their constraints.
    """
    store = pyro.get_param_store()
    with store.scope() as private:
        with torch.no_grad():
            guide(*args, **kwargs)
        if isinstance(guide, torch.nn.Module):
            guide.load_state_dict(state)
        else:
            for key, value in state.items():
                store[key] = value

    def fitted_guide(*a, **kw):
        with store.scope(private):
            return guide(*a, **kw)

    return fitted_guide
