"""The Bayesian neural network on tiny data: sites and shapes, the effect handler
against a reference computation, the plain training loops, training through the cache
(``bdl_src.runs.bnn``), uncertainty on noise."""

import ast
import inspect
import math
from dataclasses import replace

import pyro
import pytest
import torch
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites

from bdl_src import bnn, cache, metrics, train
from bdl_src.cache import cached
from bdl_src.data import ImageData, load_images
from bdl_src.runs import bnn as runs

# The book's recipe, shrunk: a small network, a few epochs on 1000 images.
TINY = replace(bnn.BNNConfig(), hidden_dim=32, num_epochs=3, batch_size=100, num_val=0)


@pytest.fixture(scope="module")
def digits() -> ImageData:
    """The first 1000 MNIST training images."""
    return load_images("mnist", train=True).subset(slice(0, 1000))


def test_model_sites_and_shapes():
    model = bnn.BayesianMLP(num_data=600, hidden_dim=16)
    x, y = torch.rand(5, 784), torch.randint(0, 10, (5,))
    tr = poutine.trace(model).get_trace(x, y)
    assert "data" in tr.nodes  # the plate's subsample indices, pruned before comparing
    tr = prune_subsample_sites(tr)
    shapes = {name: tuple(site["value"].shape) for name, site in tr.nodes.items()
              if site["type"] == "sample"}
    assert shapes == {"fc1.weight": (16, 784), "fc1.bias": (16,),
                      "fc2.weight": (16, 16), "fc2.bias": (16,),
                      "fc3.weight": (10, 16), "fc3.bias": (10,), "obs": (5,)}
    assert tr.nodes["obs"]["is_observed"]
    # The mini-batch of 5 stands for all 600 training images.
    assert tr.nodes["obs"]["scale"] == pytest.approx(600 / 5)
    assert tr.nodes["_RETURN"]["value"].shape == (5, 10)


def test_guide_matches_model():
    model = bnn.BayesianMLP(num_data=600, hidden_dim=16)
    guide = bnn.MeanFieldGuide(model, init_scale=0.01)
    x, y = torch.rand(5, 784), torch.randint(0, 10, (5,))
    guide_tr = poutine.trace(guide).get_trace(x, y)
    model_tr = prune_subsample_sites(poutine.trace(model).get_trace(x, y))
    latent = {n for n, s in model_tr.nodes.items()
              if s["type"] == "sample" and not s["is_observed"]}
    sampled = {n for n, s in guide_tr.nodes.items() if s["type"] == "sample"}
    assert sampled == latent
    for name in latent:
        q, p = guide_tr.nodes[name], model_tr.nodes[name]
        assert q["value"].shape == p["value"].shape
        assert q["fn"].base_dist.scale.max().item() == pytest.approx(0.01)


def test_local_reparameterization_matches_weight_sampling():
    """Pre-activations under the handler have the mean and variance that sampling whole
    weight matrices gives: x m^T + m_b and x^2 s^2^T + s_b^2."""
    torch.manual_seed(0)
    loc_w, scale_w = torch.randn(3, 4), torch.rand(3, 4) + 0.1
    loc_b, scale_b = torch.randn(3), torch.rand(3) + 0.1
    x = torch.randn(1, 4).expand(20000, 4)  # one input, many independent draws

    def program():
        w = pyro.sample("w", pyro.distributions.Normal(loc_w, scale_w).to_event(2))
        b = pyro.sample("b", pyro.distributions.Normal(loc_b, scale_b).to_event(1))
        return bnn.linear(x, w, b)

    pyro.set_rng_seed(0)
    out = bnn.LocalReparameterization()(program)()
    mean = x[0] @ loc_w.T + loc_b
    var = x[0].pow(2) @ scale_w.pow(2).T + scale_b.pow(2)
    assert torch.allclose(out.mean(0), mean, atol=4 * (var / 20000).sqrt().max())
    assert torch.allclose(out.var(0), var, rtol=0.05)
    # Without the handler all rows share one weight draw: no spread across rows.
    assert program().std(0).max() < 1e-5


def test_handler_ignores_values_it_did_not_see():
    x, w, b = torch.randn(2, 4), torch.randn(3, 4), torch.randn(3)
    with bnn.LocalReparameterization():
        assert torch.allclose(bnn.linear(x, w, b), x @ w.T + b)


def build(config, num_images: int):
    """Model and guide as the book builds them (``runs.fit_bnn``), on the CPU."""
    model = bnn.BayesianMLP(round(num_images / config.temperature), config.hidden_dim,
                            config.prior_scale)
    guide = bnn.MeanFieldGuide(model, config.init_scale,
                               torch.Generator().manual_seed(config.seed))
    return model, guide


def test_train_bnn_loss_falls_and_scales_learn(digits):
    config = replace(TINY, num_epochs=5)
    model, guide = build(config, len(digits))
    rho0 = {k: v.detach().clone() for k, v in guide.rho.items()}
    history = bnn.train_bnn(model, guide, digits.images, digits.labels, config)
    assert len(history["losses"]) == 5 * 10 and len(history["epoch_losses"]) == 5
    assert history["epoch_losses"][1] == pytest.approx(
        sum(history["losses"][10:20]) / 10)
    first, last = sum(history["losses"][:5]) / 5, sum(history["losses"][-5:]) / 5
    assert last < 0.7 * first  # mostly the KL term, which falls as the scales grow
    assert history["epoch_losses"] == sorted(history["epoch_losses"], reverse=True)
    # The scales moved away from their initial value (they learn 10 times faster).
    assert all((guide.rho[k] - rho0[k]).abs().mean() > 1e-2 for k in rho0)
    # The guide's parameters are in Pyro's param store, as SVI leaves them.
    assert "guide$$$rho.fc1_weight" in pyro.get_param_store()


def test_train_bnn_is_seeded(digits):
    config = replace(TINY, num_epochs=1)
    runs_ = [bnn.train_bnn(*build(config, 300), digits.images[:300],
                           digits.labels[:300], config)["losses"] for _ in range(2)]
    assert runs_[0] == runs_[1]
    other = bnn.train_bnn(*build(replace(config, seed=1), 300), digits.images[:300],
                          digits.labels[:300], replace(config, seed=1))["losses"]
    assert other != runs_[0]


def test_cached_bnn_restores_the_guide(digits):
    """Trained once; the second call restores the fit into new objects: the same
    history, the same predictions, and the guide keeps its methods."""
    key = runs.fit_key(TINY, digits)
    model, guide = build(TINY, len(digits))
    history, info = cached("bnn", key, bnn.train_bnn, model, guide, digits.images,
                           digits.labels, TINY, code=runs.BNN_CODE)
    assert not info["from_cache"] and info["train_seconds"] > 0
    assert info["examples"] == TINY.num_epochs * len(digits)
    x = digits.images[:7]
    sp = bnn.predict_bnn(model, guide, x, num_samples=4)
    assert sp.shape == (4, 7, 10)
    assert torch.allclose(sp.sum(-1), torch.ones(4, 7), atol=1e-5)

    model2, guide2 = build(TINY, len(digits))
    assert not torch.equal(guide2.rho["fc1_weight"], guide.rho["fc1_weight"])
    history2, info2 = cached("bnn", key, bnn.train_bnn, model2, guide2, digits.images,
                             digits.labels, TINY, code=runs.BNN_CODE)
    assert info2["from_cache"] and info2["key"] == info["key"]
    assert history2 == history
    assert torch.equal(bnn.predict_bnn(model2, guide2, x, num_samples=4), sp)
    assert bnn.input_scale_map(guide2).shape == (784,)
    # runs.fit_bnn makes the very same call: it finds this entry.
    *_, info3 = runs.fit_bnn(digits, TINY)
    assert info3["from_cache"] and info3["key"] == info["key"]


def test_twin_trains_and_is_cached(digits):
    net, history, info = runs.fit_twin(digits, TINY)
    assert not info["from_cache"]
    assert len(history["losses"]) == TINY.num_epochs * 10
    assert history["epoch_losses"][-1] < history["epoch_losses"][0]
    x = digits.images[:7]
    p = bnn.predict_twin(net, x)
    assert p.shape == (7, 10)
    net2, history2, info2 = runs.fit_twin(digits, TINY)
    assert info2["from_cache"] and history2 == history
    assert torch.equal(bnn.predict_twin(net2, x), p)
    # The plain loop, run again from the same initial weights, retraces the fit.
    torch.manual_seed(TINY.seed)
    net3 = bnn.DeterministicMLP(TINY.hidden_dim)
    assert bnn.train_twin(net3, digits.images, digits.labels, TINY) == history
    assert torch.equal(bnn.predict_twin(net3, x), p)


def test_cache_key_covers_the_handler_and_the_batches():
    """Editing the local reparameterisation or the batching retrains the BNN; the
    training code itself holds no cache, no timing and no data parallelism."""
    model, guide = build(TINY, 100)
    texts = cache.code_of(bnn.train_bnn, (model, guide), runs.BNN_CODE)
    for obj in (bnn.train_bnn, bnn.LocalReparameterization, bnn.linear,
                bnn.MeanFieldGuide, bnn.BayesianLinear, train.minibatches):
        assert inspect.getsource(obj) in texts
    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(bnn))):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
    for name in ("sys", "time", "bdl_src.cache", "bdl_src.distributed"):
        assert name not in imported


def test_noise_is_more_uncertain_than_digits(digits):
    """After a short training with the book's recipe (a small network, 400 steps on 1000
    digits), pure-noise images get a higher predictive entropy and mutual information
    than the training digits."""
    config = replace(TINY, hidden_dim=64, num_epochs=40)
    model, guide, _, _ = runs.fit_bnn(digits, config)
    noise = torch.rand(200, 784, generator=torch.Generator().manual_seed(1))
    sp_digits = bnn.predict_bnn(model, guide, digits.images[:200], num_samples=16)
    sp_noise = bnn.predict_bnn(model, guide, noise, num_samples=16)
    h_digits = metrics.predictive_entropy(sp_digits)
    h_noise = metrics.predictive_entropy(sp_noise)
    assert h_noise.mean() > h_digits.mean() + 0.2 * math.log(10)
    assert metrics.auroc(h_digits, h_noise) > 0.9
    mi_digits = metrics.mutual_information(sp_digits)
    mi_noise = metrics.mutual_information(sp_noise)
    assert mi_noise.mean() > mi_digits.mean()
    assert metrics.accuracy(sp_digits.mean(0), digits.labels[:200]) > 0.9


def test_evaluation_is_kept_in_the_cache(monkeypatch, digits):
    """The results page and the CLI read the chapter's numbers from the cache: a second
    ``runs.evaluated`` call predicts nothing."""
    small = replace(TINY, num_epochs=1)
    monkeypatch.setattr(runs, "BNNConfig", lambda: small)
    net = replace(runs.NetConfig(), hidden_dim=16, num_epochs=1)
    monkeypatch.setattr(runs, "NetConfig", lambda: net)
    monkeypatch.setattr(runs, "ENSEMBLE_SIZE", 2)
    monkeypatch.setattr(runs, "NUM_SHIFTED", 20)
    monkeypatch.setattr(runs, "EVAL_SAMPLES", 3)
    data = {"train": digits.subset(slice(0, 600)),
            "val": digits.subset(slice(600, 700)),
            "test": digits.subset(slice(700, 900)),
            "fashion": load_images("fashion", train=False).subset(slice(0, 200))}
    first = runs.evaluated(data, seed=0)
    assert set(first["methods"]) == set(runs.METHODS)
    bnn_row = first["methods"]["BNN"]
    assert 0 <= bnn_row["accuracy"] <= 1 and bnn_row["auroc_mi"] is not None
    assert first["methods"]["temperature scaling"]["auroc_mi"] is None
    assert first["temperature"] > 0 and first["prior_precision"] > 0

    def no_prediction(*args, **kwargs):
        raise AssertionError("predicted again")

    monkeypatch.setattr(bnn, "predict_bnn", no_prediction)
    assert runs.evaluated(data, seed=0) == first
    table = runs.comparison_table({0: first, 1: first})
    assert list(table.index) == list(runs.METHODS)
    assert table.loc["BNN", "AUROC, mutual info."] != "—"
    assert table.loc["deterministic", "AUROC, mutual info."] == "—"
