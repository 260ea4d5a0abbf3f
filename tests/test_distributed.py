"""Data-parallel training: sharding and scaling by hand, then real DDP under
torchrun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO
from pyro.infer.autoguide import AutoDelta
from safetensors.torch import load_file

from bdl_src import bnn, cache, distributed

ROOT = Path(__file__).resolve().parent.parent


def as_rank(monkeypatch, rank, world_size):
    """Make this process believe it is ``rank`` of ``world_size`` (no process group)."""
    monkeypatch.setenv("WORLD_SIZE", str(world_size))
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("LOCAL_RANK", str(rank))


def test_single_process_is_a_no_op():
    assert distributed.world_size() == 1 and distributed.is_main()
    assert distributed.mean(2.5) == 2.5 and distributed.broadcast({"a": 1}) == {"a": 1}
    assert distributed.rank_seed(3) == 3
    step, policy = pyro.infer.SVI.step, cache.POLICY
    with distributed.data_parallel():
        assert pyro.infer.SVI.step is step and cache.POLICY is policy
    index = torch.arange(7)
    assert distributed.share(index) is index


@pytest.mark.parametrize("world_size", [2, 3])
def test_every_process_gets_its_share_of_every_batch(monkeypatch, world_size):
    """All processes hold the same batch; together their shares are the batch, in
    nearly equal parts. Scalars are shared whole."""
    x = torch.arange(23)
    shares = []
    for rank in range(world_size):
        as_rank(monkeypatch, rank, world_size)
        shares.append(distributed.share(x))
        assert distributed.share(torch.tensor(1.0)).dim() == 0
    assert torch.equal(torch.cat(shares), x)
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


def test_averaged_shard_gradients_are_the_full_batch_gradient(monkeypatch):
    """Each process's plate scales its share to the full data set, so the average of
    the processes' gradients (what data_parallel's step computes) is the full-batch
    gradient. Shown on the chapter 2 model with a point-mass guide, whose ELBO has no
    sampling noise."""
    images = torch.rand(40, 784, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(40) % 10
    pyro.set_rng_seed(0)
    model = bnn.BayesianMLP(num_data=40, hidden_dim=8)
    guide = AutoDelta(model)
    elbo = Trace_ELBO()

    def grads(x, y):
        loss = elbo.differentiable_loss(model, guide, x, y)
        params = [p for _, p in sorted(guide.named_parameters())]
        return torch.autograd.grad(loss, params)

    full = grads(images, labels)
    shares = []
    for rank in range(2):
        as_rank(monkeypatch, rank, 2)
        shares.append(grads(distributed.share(images), distributed.share(labels)))
    for g_full, g0, g1 in zip(full, *shares):
        assert torch.allclose((g0 + g1) / 2, g_full, rtol=1e-4, atol=1e-3)


def test_distributed_runs_have_their_own_cache_key(monkeypatch):
    single = cache.cache_key("m", {"a": 1})
    as_rank(monkeypatch, 0, 2)
    monkeypatch.setattr(cache, "POLICY", distributed.DistributedPolicy())
    assert cache.cache_key("m", {"a": 1}) != single


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    """Two CPU processes (gloo) launched by torchrun train tiny versions of every
    chapter's model together; each writes what it ended with."""
    tmp = tmp_path_factory.mktemp("ddp")
    out = tmp / "out"
    out.mkdir()
    env = {**os.environ, "BDL_CACHE_DIR": str(tmp / "cache"), "OMP_NUM_THREADS": "1",
           "CUDA_VISIBLE_DEVICES": "",  # CPU processes (gloo), GPUs or not
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         "--nproc-per-node", "2", str(ROOT / "tests" / "ddp_worker.py"), str(out)],
        env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp


def test_ddp_processes_end_with_identical_parameters(ddp_run):
    ranks = [load_file(str(ddp_run / "out" / f"rank{r}.safetensors")) for r in (0, 1)]
    info = json.loads((ddp_run / "out" / "rank1.json").read_text())
    assert info["world_size"] == 2 and info["backend"] == "gloo"
    assert Path(info["package"]).resolve().parent.parent == ROOT  # this checkout's code
    models = {key.split("/")[0] for key in ranks[0]}
    assert models == {"regression", "vae", "bnn", "bnn_twin", "ssvae", "ssvae_m1"}
    assert ranks[0].keys() == ranks[1].keys()
    for key in ranks[0]:
        assert torch.equal(ranks[0][key], ranks[1][key]), key


def test_ddp_losses_fall(ddp_run):
    losses = json.loads((ddp_run / "out" / "rank0.json").read_text())["losses"]
    for name, curve in losses.items():
        assert curve[-1] < curve[0], (name, curve)


def test_only_rank_0_writes_the_cache(ddp_run):
    saved = [json.loads((ddp_run / "out" / f"rank{r}.json").read_text())["saved"]
             for r in (0, 1)]
    names = sorted(n.rsplit("-", 1)[0] for n in saved[0])
    assert names == ["bnn", "bnn_twin", "regression_gaussian_mean_field", "ssvae",
                     "ssvae-m1", "vae"]  # (the VAE's final evaluation is not cached
    #                                         by vae_runs.trained_vae)
    assert saved[1] == []
    assert sorted(p.name for p in (ddp_run / "cache").iterdir()) == sorted(saved[0])
