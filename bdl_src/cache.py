"""Checkpoint cache: train a model once per configuration, load it on every later build.

``cached(name, config, train_fn, *args)`` is the one entry point. It calls
``train_fn(*args)`` (a chapter's plain training loop) the first time and stores what the
run changed: the state of every ``nn.Module`` among ``args`` (an ``AutoNormal`` guide, a
VAE, ...) and the parameters the run created in Pyro's param store (a hand-written
guide's ``pyro.param`` values), with the history ``train_fn`` returned. Every later call
with the same key restores those into the very objects passed in and returns the stored
history: the reader's objects stay theirs (a restored ``AutoNormal`` keeps
``.quantiles()``).

The key covers the name, the configuration, the *source code* that defines and trains
the model (``train_fn``, the classes of the modules among ``args`` and of their
submodules, functions among ``args``, and whatever ``code=`` adds), and the torch and
Pyro versions. Plots, evaluation and page helpers are not in it: editing them retrains
nothing.

Entries are safetensors files written to a temporary name and renamed, so an interrupted
run never leaves a half-written entry; a digest of the tensors is stored beside them,
and an entry that does not load or does not match its digest is retrained. Nothing is
ever unpickled. ``POLICY`` says who writes and whether all processes agree that an entry
exists: one process by default; ``bdl_src.distributed`` swaps it for data-parallel runs.
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
from contextlib import contextmanager
from pathlib import Path

import pyro
import torch
from pyro.distributions import constraints
from safetensors import safe_open
from safetensors.torch import load_file, save_file

CACHE_ENV = "BDL_CACHE_DIR"
REPO_CACHE = Path(__file__).resolve().parent.parent / ".model_cache"
PACKAGE = "bdl_src"
log = logging.getLogger(__name__)

State = dict[str, torch.Tensor]


class CacheError(RuntimeError):
    """The cache folder cannot be written."""


class LocalPolicy:
    """One process: it finds, trains and writes entries alone."""

    key_extra: dict = {}

    def agree(self, found: bool) -> bool:
        """Whether every process found the entry (here: this one)."""
        return found

    def writes(self) -> bool:
        return True

    def share(self, meta: dict) -> dict:
        """The writer's metadata, in every process."""
        return meta


POLICY = LocalPolicy()


def cache_dir() -> Path:
    """``$BDL_CACHE_DIR`` if set, else ``.model_cache/`` at the repository root."""
    return Path(os.environ.get(CACHE_ENV) or REPO_CACHE)


def _ours(obj) -> bool:
    return (getattr(obj, "__module__", "") or "").split(".")[0] == PACKAGE


def code_of(train_fn: Callable, args: Iterable = (), code: Iterable = ()) -> list[str]:
    """Source texts the key covers: ``train_fn``, the classes of this package's modules
    among ``args`` (and of their submodules), this package's functions among ``args``,
    and every object in ``code`` (functions, classes or modules)."""
    code = list(code)
    objects = [train_fn, *code]
    for arg in args:
        if isinstance(arg, torch.nn.Module):
            objects += [type(m) for m in arg.modules()]
        elif callable(arg) and not isinstance(arg, torch.Tensor):
            objects.append(getattr(arg, "__func__", arg))
    seen, texts = set(), []
    for obj in objects:
        obj = getattr(obj, "__func__", obj)
        if not (_ours(obj) or any(obj is c for c in code)) or id(obj) in seen:
            continue
        seen.add(id(obj))
        texts.append(inspect.getsource(obj))
    return texts


def _jsonable(config):
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else config


def cache_key(name: str, config, code_texts: Iterable[str] = ()) -> str:
    """A hex digest over the name, the config (a dataclass or JSON-able value), the
    source texts, the torch and Pyro versions and ``POLICY.key_extra``."""
    h = hashlib.sha256()
    h.update(json.dumps([name, _jsonable(config), torch.__version__, pyro.__version__,
                         POLICY.key_extra], sort_keys=True, default=str).encode())
    for text in sorted(code_texts):
        h.update(text.encode())
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
    """Read an entry; raise ``ValueError`` if it is truncated, corrupt or tampered
    with."""
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


# --- what a run changed: module states and new param-store entries ----------------

_CONSTRAINTS = {id(v): k for k, v in vars(constraints).items()
                if isinstance(v, constraints.Constraint)}


def _modules(args) -> list[tuple[int, torch.nn.Module]]:
    return [(i, a) for i, a in enumerate(args) if isinstance(a, torch.nn.Module)]


def _store_params(exclude: set[int]) -> dict[str, torch.Tensor]:
    """Constrained values of the param store's entries that no module in ``exclude``
    (ids of parameters) owns."""
    store = pyro.get_param_store()
    return {name: store[name] for name, p in store._params.items()
            if id(p) not in exclude}


def _capture(args, fresh: dict[str, torch.Tensor]) -> tuple[State, dict]:
    """The tensors to store: ``arg<i>.<key>`` for module states and ``param.<name>`` for
    new param-store entries, and the constraint of each of the latter by name."""
    state, constraint_names = {}, {}
    for i, module in _modules(args):
        state.update({f"arg{i}.{k}": v.detach().clone()
                      for k, v in module.state_dict().items()})
    store = pyro.get_param_store()
    for name, value in fresh.items():
        constraint = store._constraints.get(name, constraints.real)
        if id(constraint) not in _CONSTRAINTS:
            raise TypeError(f"cannot store the constraint {constraint} of {name!r}")
        state[f"param.{name}"] = value.detach().clone()
        constraint_names[name] = _CONSTRAINTS[id(constraint)]
    return state, constraint_names


def _materialize(module: torch.nn.Module, args) -> None:
    """Autoguides create their parameters on their first call: make them, with the
    call's tensors, without touching the random state or the param store."""
    if not hasattr(module, "_setup_prototype") or getattr(module, "prototype_trace",
                                                          None) is not None:
        return
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    with pyro.get_param_store().scope(), torch.random.fork_rng(), torch.no_grad():
        module(*tensors)


def _forget(names: Iterable[str]) -> None:
    """Drop the global param store's entries of these module parameters: a module
    (an autoguide, say) then puts its own values there when next called, instead of
    taking stale ones of the same name."""
    store = pyro.get_param_store()
    for name in names:
        if name in store:
            del store[name]


def _restore(args, state: State, constraint_names: dict) -> None:
    for i, module in _modules(args):
        prefix = f"arg{i}."
        own = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        _materialize(module, args)
        device = next(iter(module.state_dict().values()), torch.empty(0)).device
        module.load_state_dict({k: v.to(device) for k, v in own.items()})
    store = pyro.get_param_store()
    for name, cname in constraint_names.items():
        value = state[f"param.{name}"]
        if name in store:
            del store[name]
        pyro.param(name, value.clone(), constraint=getattr(constraints, cname))


@contextmanager
def _count_examples():
    """Count the examples ``SVI.step`` sees (the first dimension of its first
    tensor)."""
    counter = {"examples": 0}
    step = pyro.infer.SVI.step

    def counting_step(svi, *args, **kwargs):
        first = next((a for a in args if isinstance(a, torch.Tensor)), None)
        counter["examples"] += 0 if first is None or first.dim() == 0 else len(first)
        return step(svi, *args, **kwargs)

    pyro.infer.SVI.step = counting_step
    try:
        yield counter
    finally:
        pyro.infer.SVI.step = step


def cached(name: str, config, train_fn: Callable, *args, code: Iterable = (),
           refresh: bool = False, saves_state: bool = True):
    """``train_fn(*args)``, run once per key; later calls restore its results.

    ``train_fn`` trains the modules among ``args`` (and may create parameters in Pyro's
    param store) and returns a JSON-able history, e.g. the loss of every step. It runs
    in a private param-store scope, so it may ``pyro.clear_param_store()`` without
    erasing other fits; the parameters it created are then put in the global store, as
    a plain run would leave them. ``saves_state=False`` is for pure computations
    (evaluations): only the returned value is stored.

    Returns ``(history, info)``: ``info`` has ``train_seconds`` (of the first run),
    ``examples`` (seen by ``SVI.step``) and ``examples_per_second`` when counted,
    ``trains`` (``saves_state``), ``config``, ``key`` and ``from_cache``.
    """
    key = cache_key(name, config, code_of(train_fn, args, code))
    path = cache_dir() / f"{name}-{key}.safetensors"
    if POLICY.writes():
        _remove_orphans(path)
    entry = None
    if path.exists() and not refresh:
        try:
            entry = load_entry(path)
        except ValueError as err:
            log.warning("retraining %s: corrupt cache entry (%s)", name, err)
    if POLICY.agree(entry is not None):
        state, meta = entry
        if saves_state:
            _restore(args, state, meta["constraints"])
            _forget(meta["module_params"])
        return meta["history"], {**meta["info"], "from_cache": True}
    with pyro.get_param_store().scope(), _count_examples() as counter:
        start = time.perf_counter()
        history = train_fn(*args)
        seconds = time.perf_counter() - start
        # (after training: autoguides create their parameters on their first call)
        owned = {id(p) for _, m in _modules(args) for p in m.parameters()}
        fresh = _store_params(owned) if saves_state else {}
        module_params = [n for n, p in pyro.get_param_store()._params.items()
                         if id(p) in owned]
        state, constraint_names = _capture(args, fresh) if saves_state else ({}, {})
    _forget(module_params)
    for pname, cname in constraint_names.items():  # as a plain run would leave them
        if pname in pyro.get_param_store():
            del pyro.get_param_store()[pname]
        pyro.param(pname, fresh[pname].detach().clone(),
                   constraint=getattr(constraints, cname))
    info = {"train_seconds": seconds, "trains": saves_state, "key": key,
            "config": json.loads(json.dumps(_jsonable(config), default=str))}
    if counter["examples"]:
        info.update(examples=counter["examples"],
                    examples_per_second=counter["examples"] / seconds)
    history = json.loads(json.dumps(history))  # what a later load will return
    meta = {"history": history, "info": info, "constraints": constraint_names,
            "module_params": module_params}
    if POLICY.writes():
        try:
            save_entry(path, state, meta)
        except OSError as err:
            raise CacheError(f"cannot write the model cache {path.parent} ({err}); set "
                             f"{CACHE_ENV} to a writable folder") from err
    meta = POLICY.share(meta)
    return meta["history"], {**meta["info"], "from_cache": False}


def entries(folder: Path | None = None) -> list[dict]:
    """The metadata of every entry in the cache (``name``, ``info``, ``history``), for
    the benchmark and the results page."""
    out = []
    for path in sorted((folder or cache_dir()).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = json.loads((f.metadata() or {})["meta"])
        except Exception:  # an unreadable entry is simply not listed
            continue
        out.append({"name": path.name.rsplit("-", 1)[0], **meta})
    return out
