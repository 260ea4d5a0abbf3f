import dataclasses
import importlib.util
import linecache
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
    """A fake training run that counts how often it ran; it sets a module's weights."""

    def __init__(self):
        self.calls = 0

    def __call__(self, net, value=1.5):
        self.calls += 1
        with torch.no_grad():
            net.weight.fill_(value)
        return {"loss": [3, 2]}


def fake_train(net, counter):
    return counter(net)


def entries():
    return sorted(cache.cache_dir().glob("*"))


def test_trains_once_then_restores_into_the_objects_passed():
    counter = Counter()
    net = torch.nn.Linear(3, 2)
    history, info = cache.cached("toy", Config(), fake_train, net, counter)
    assert info["from_cache"] is False and info["train_seconds"] >= 0
    assert history == {"loss": [3, 2]}
    fresh = torch.nn.Linear(3, 2)
    again, info2 = cache.cached("toy", Config(), fake_train, fresh, counter)
    assert counter.calls == 1 and info2["from_cache"] is True and again == history
    assert torch.equal(fresh.weight, net.weight) and torch.equal(fresh.bias, net.bias)


def test_config_change_retrains_and_refresh_forces():
    counter = Counter()
    net = torch.nn.Linear(3, 2)
    cache.cached("toy", Config(3), fake_train, net, counter)
    cache.cached("toy", Config(4), fake_train, net, counter)
    cache.cached("toy", Config(4), fake_train, net, counter, refresh=True)
    assert counter.calls == 3


def test_key_covers_the_code_that_trains_not_the_rest(tmp_path, monkeypatch):
    """Editing a plot function retrains nothing; editing one model's class or training
    function retrains that model only."""
    package = tmp_path / "pkg"
    (package / "bdl_src").mkdir(parents=True)
    source = textwrap.dedent("""
        import torch

        class ModelA(torch.nn.Linear):
            pass

        class ModelB(torch.nn.Linear):
            pass

        def train(net):
            return [1.0]

        def plot(net):
            return "a figure"
    """)
    (package / "bdl_src" / "toy.py").write_text(source)

    def keys(text):
        path = package / "bdl_src" / "toy.py"
        path.write_text(text)
        linecache.checkcache()
        spec = importlib.util.spec_from_file_location("bdl_src.toy", path)
        toy = importlib.util.module_from_spec(spec)
        monkeypatch.setitem(sys.modules, "bdl_src.toy", toy)
        spec.loader.exec_module(toy)
        a, b = toy.ModelA(2, 2), toy.ModelB(2, 2)
        return (cache.cache_key("a", {}, cache.code_of(toy.train, [a])),
                cache.cache_key("b", {}, cache.code_of(toy.train, [b])))

    base = keys(source)
    assert keys(source.replace('"a figure"', '"another figure"')) == base
    edited_a = keys(source.replace("class ModelA(torch.nn.Linear):\n    pass",
                                   "class ModelA(torch.nn.Linear):\n    bias_init = 0"))
    assert edited_a[0] != base[0] and edited_a[1] == base[1]
    edited_train = keys(source.replace("return [1.0]", "return [2.0]"))
    assert edited_train[0] != base[0] and edited_train[1] != base[1]


def test_truncated_entry_is_retrained(caplog):
    counter = Counter()
    net = torch.nn.Linear(3, 2)
    cache.cached("toy", Config(), fake_train, net, counter)
    (path,) = entries()
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _, info = cache.cached("toy", Config(), fake_train, net, counter)
    assert counter.calls == 2 and info["from_cache"] is False
    assert "corrupt cache entry" in caplog.text
    assert cache.load_entry(path)[0]["arg0.weight"].shape == (2, 3)  # rewritten whole


def test_flipped_bit_is_detected():
    counter = Counter()
    cache.cached("toy", Config(), fake_train, torch.nn.Linear(3, 2), counter)
    (path,) = entries()
    raw = bytearray(path.read_bytes())
    raw[-3] ^= 0xFF  # inside the tensor data, not the header
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="digest"):
        cache.load_entry(path)
    cache.cached("toy", Config(), fake_train, torch.nn.Linear(3, 2), counter)
    assert counter.calls == 2


def test_cache_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "elsewhere"))
    cache.cached("toy", Config(), fake_train, torch.nn.Linear(3, 2), Counter())
    assert len(list((tmp_path / "elsewhere").glob("toy-*.safetensors"))) == 1


def test_unwritable_cache_folder_is_one_clear_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(cache.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(cache.CacheError, match="cannot write the model cache"):
        cache.cached("toy", Config(), fake_train, torch.nn.Linear(3, 2), Counter())


def model(data):
    x = pyro.sample("x", dist.Normal(0.0, 3.0))
    with pyro.plate("data", len(data)):
        pyro.sample("obs", dist.Normal(x, 1.0), obs=data)


def hand_guide(data):
    loc = pyro.param("m", torch.tensor(0.0))
    scale = pyro.param("s", torch.tensor(1.0), constraint=dist.constraints.positive)
    pyro.sample("x", dist.Normal(loc, scale))


def svi_train(guide, data, steps=200):
    pyro.clear_param_store()
    svi = pyro.infer.SVI(model, guide, pyro.optim.Adam({"lr": 0.05}),
                         pyro.infer.Trace_ELBO())
    return [svi.step(data) for _ in range(steps)]


def test_restored_autoguides_keep_their_own_values_and_methods():
    """Two AutoNormal guides share parameter names; each fitted guide, trained or
    restored, gives its own posterior and keeps its methods."""
    fitted = []
    for centre in (1.0, -4.0):
        data = torch.full((20,), centre)
        guide = AutoNormal(model)
        losses, info = cache.cached(f"auto{centre}", {}, svi_train, guide, data)
        assert info["examples"] == 200 * 20 and len(losses) == 200
        fitted.append((guide, data))
    for restored in (False, True):
        for (guide, data), centre in zip(fitted, (1.0, -4.0)):
            if restored:
                guide = AutoNormal(model)
                _, info = cache.cached(f"auto{centre}", {}, svi_train, guide, data)
                assert info["from_cache"]
            pyro.clear_param_store()
            assert abs(guide.median(data)["x"].item() - centre) < 0.2
            samples = torch.stack([guide(data)["x"] for _ in range(100)])
            assert abs(samples.mean().item() - centre) < 0.3


def test_hand_written_guide_is_restored_into_the_param_store():
    data = torch.full((20,), 2.0)
    cache.cached("hand", {}, svi_train, hand_guide, data)
    trained = pyro.param("m").item()
    assert abs(trained - 2.0) < 0.3
    pyro.clear_param_store()
    _, info = cache.cached("hand", {}, svi_train, hand_guide, data)
    assert info["from_cache"] and pyro.param("m").item() == trained
    assert pyro.get_param_store()._constraints["s"] is dist.constraints.positive
    assert os.environ[cache.CACHE_ENV]  # the fixture isolates the cache


def test_a_later_fit_leaves_an_earlier_hand_written_guide_alone():
    cache.cached("hand", {}, svi_train, hand_guide, torch.full((20,), 2.0))
    trained = pyro.param("m").item()
    cache.cached("auto", {}, svi_train, AutoNormal(model), torch.full((20,), -1.0))
    assert pyro.param("m").item() == trained  # its clear_param_store ran in a scope


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

    def fit(net):
        if phase == "fit":
            Path(cache.cache_dir(), "ready").touch()
            time.sleep(60)
        return []

    cache.cache_dir().mkdir(parents=True, exist_ok=True)
    cache.save_file = slow_save
    cache.cached("killed", {"size": 1}, fit, torch.nn.Linear(1000, 100))
""")


@pytest.mark.parametrize("phase,sig", [("fit", signal.SIGINT), ("fit", signal.SIGKILL),
                                       ("save", signal.SIGKILL)])
def test_killed_training_leaves_nothing_a_later_run_loads(phase, sig):
    folder = cache.cache_dir()
    # The child restores the default SIGINT handler: a suite started in the background
    # (`make test &`, nohup, some CI runners) has SIGINT ignored, and children inherit
    # it.
    child = subprocess.Popen([sys.executable, "-c", CHILD, phase],
                             env=os.environ.copy(),
                             stderr=subprocess.DEVNULL,
                             preexec_fn=lambda: signal.signal(signal.SIGINT,
                                                              signal.SIG_DFL))
    deadline = time.time() + 60
    while not (folder / "ready").exists():
        assert child.poll() is None and time.time() < deadline, "child never got going"
        time.sleep(0.05)
    child.send_signal(sig)
    assert child.wait(timeout=30) != 0
    assert list(folder.glob("*.safetensors")) == []  # no entry under the final name
    calls = []
    _, info = cache.cached("killed", {"size": 1}, lambda net: calls.append(1) or [],
                           torch.nn.Linear(1000, 100))
    assert calls == [1] and info["from_cache"] is False
    assert list(folder.glob("*.tmp-*")) == []  # the killed writer's leftovers are gone
