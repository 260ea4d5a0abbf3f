import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro.infer.autoguide import AutoNormal

from bdl_src import cache


@dataclasses.dataclass(frozen=True)
class Config:
    size: int = 3


class Counter:
    """A fake training run that counts how often it was called."""

    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return {"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor(1.5)}, {"loss": [3, 2]}


def entries():
    return sorted(cache.cache_dir().glob("*"))


def test_trains_once_then_loads():
    fit = Counter()
    state, meta = cache.fit_or_load("toy", Config(), fit, code=[cache])
    assert meta["from_cache"] is False and "train_seconds" in meta
    again, meta2 = cache.fit_or_load("toy", Config(), fit, code=[cache])
    assert fit.calls == 1 and meta2["from_cache"] is True
    assert meta2["loss"] == [3, 2]
    assert torch.equal(again["w"], state["w"]) and again["b"].item() == 1.5


def test_config_change_retrains_and_refresh_forces():
    fit = Counter()
    cache.fit_or_load("toy", Config(3), fit, code=[cache])
    cache.fit_or_load("toy", Config(4), fit, code=[cache])
    cache.fit_or_load("toy", Config(4), fit, code=[cache], refresh=True)
    assert fit.calls == 3


def test_key_covers_code():
    assert cache.cache_key("toy", Config(), [cache]) != cache.cache_key("toy", Config(),
                                                                        [dataclasses])


def test_truncated_entry_is_retrained(caplog):
    fit = Counter()
    cache.fit_or_load("toy", Config(), fit, code=[cache])
    (path,) = entries()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    state, meta = cache.fit_or_load("toy", Config(), fit, code=[cache])
    assert fit.calls == 2 and meta["from_cache"] is False
    assert "corrupt cache entry" in caplog.text
    assert cache.load_entry(path)[0]["w"].shape == (2, 3)  # rewritten whole


def test_flipped_bit_is_detected():
    fit = Counter()
    cache.fit_or_load("toy", Config(), fit, code=[cache])
    (path,) = entries()
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # inside the tensor data, not the header
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="digest"):
        cache.load_entry(path)
    cache.fit_or_load("toy", Config(), fit, code=[cache])
    assert fit.calls == 2


def test_failed_write_leaves_no_entry(monkeypatch):
    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        cache.fit_or_load("toy", Config(), Counter(), code=[cache])
    assert entries() == []


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    cache.fit_or_load("toy", Config(), Counter(), code=[cache])
    assert len(list((tmp_path / "elsewhere").glob("toy-*.safetensors"))) == 1


def model():
    pyro.sample("x", dist.Normal(0.0, 1.0))


def test_restored_guides_keep_their_own_values():
    """Two AutoNormal guides share parameter names; each restored guide keeps its own."""
    guides = []
    for loc in (1.0, -4.0):
        pyro.clear_param_store()
        guide = AutoNormal(model)
        guide()
        with torch.no_grad():
            guide.locs.x_unconstrained.fill_(loc)
        state = cache.guide_state(guide)
        guides.append(cache.restore_guide(AutoNormal(model), state))
    pyro.clear_param_store()
    for fitted, loc in zip(guides, (1.0, -4.0)):
        samples = torch.stack([fitted()["x"] for _ in range(200)])
        assert abs(samples.mean().item() - loc) < 0.5


def test_restored_function_guide_survives_param_store_clear():
    def guide():
        pyro.sample("x", dist.Normal(pyro.param("m", torch.tensor(0.0)), 1e-3))

    pyro.param("m", torch.tensor(0.0))
    fitted = cache.restore_guide(guide, {"m": torch.tensor(7.0)})
    pyro.clear_param_store()
    trace = pyro.poutine.trace(fitted).get_trace()
    assert abs(trace.nodes["x"]["value"].item() - 7.0) < 0.1
    assert os.environ[cache.CACHE_ENV]  # the fixture isolates the cache


CHILD = textwrap.dedent("""
    import sys, time, torch
    from pathlib import Path
    from bdl_src import cache

    phase = sys.argv[1]
    real_save = cache.save_file

    def slow_save(tensors, filename, metadata=None):
        real_save(tensors, filename, metadata=metadata)
        Path(filename).with_name("ready").touch()  # written, not yet renamed
        time.sleep(60)

    def fit():
        if phase == "fit":
            Path(cache.cache_dir(), "ready").touch()
            time.sleep(60)
        return {"w": torch.ones(1000, 100)}, {}

    cache.cache_dir().mkdir(parents=True, exist_ok=True)
    cache.save_file = slow_save
    cache.fit_or_load("killed", {"size": 1}, fit, code=[cache])
""")


@pytest.mark.parametrize("phase,sig", [("fit", signal.SIGINT), ("fit", signal.SIGKILL),
                                       ("save", signal.SIGKILL)])
def test_killed_training_leaves_nothing_a_later_run_loads(phase, sig):
    folder = cache.cache_dir()
    child = subprocess.Popen([sys.executable, "-c", CHILD, phase], env=os.environ.copy(),
                             stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (folder / "ready").exists():
        assert child.poll() is None and time.time() < deadline, "child never got going"
        time.sleep(0.05)
    child.send_signal(sig)
    assert child.wait(timeout=30) != 0
    assert list(folder.glob("*.safetensors")) == []  # no entry under the final name
    fit = Counter()
    state, meta = cache.fit_or_load("killed", {"size": 1}, fit, code=[cache])
    assert fit.calls == 1 and meta["from_cache"] is False
    assert list(folder.glob("*.tmp-*")) == []  # the killed writer's leftovers are gone
