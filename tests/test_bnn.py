"""The Bayesian neural network on tiny data: sites and shapes, the effect handler
against a reference computation, training through the cache, uncertainty on noise."""

import math
from dataclasses import replace

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import TraceMeanField_ELBO
from pyro.poutine.util import prune_subsample_sites

from bdl_src import bnn, metrics, train
from bdl_src.data import ImageData, load_images

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


def test_loss_falls(digits):
    # Tempered as in the book (T = 0.01), so that the data term dominates the loss.
    model = bnn.BayesianMLP(100 * len(digits), hidden_dim=32)
    guide = bnn.MeanFieldGuide(model, init_scale=1e-3, generator=torch.Generator()
                               .manual_seed(0))
    lr = bnn.LocalReparameterization()
    log = train.run_svi(lr(model), lr(guide), (digits.images, digits.labels),
                        optim=pyro.optim.Adam({"lr": 1e-2}), loss=TraceMeanField_ELBO(),
                        num_epochs=5, batch_size=100, seed=0)
    assert len(log.losses) == 50
    first, last = sum(log.losses[:5]) / 5, sum(log.losses[-5:]) / 5
    assert last < 0.5 * first


def test_fit_predict_and_cache(digits):
    model, guide, log = bnn.fit_bnn(digits, TINY)
    assert len(log.epoch_losses) == TINY.num_epochs
    assert log.epoch_losses[-1] < log.epoch_losses[0]
    x = digits.images[:7]
    sp = bnn.predict_bnn(model, guide, x, num_samples=4)
    assert sp.shape == (4, 7, 10)
    assert torch.allclose(sp.sum(-1), torch.ones(4, 7), atol=1e-5)
    # The second call loads the fit from the cache: same predictions, same log.
    model2, guide2, log2 = bnn.fit_bnn(digits, TINY)
    assert log2.losses == log.losses
    assert torch.allclose(bnn.predict_bnn(model2, guide2, x, num_samples=4), sp)

    net, twin_log = bnn.fit_twin(digits, TINY)
    assert twin_log.epoch_losses[-1] < twin_log.epoch_losses[0]
    p = bnn.predict_twin(net, x)
    assert p.shape == (7, 10)
    net2, _ = bnn.fit_twin(digits, TINY)
    assert torch.allclose(bnn.predict_twin(net2, x), p)


def test_noise_is_more_uncertain_than_digits(digits):
    """After a short training with the book's recipe (a small network, 400 steps on 1000
    digits), pure-noise images get a higher predictive entropy and mutual information
    than the training digits."""
    config = replace(TINY, hidden_dim=64, num_epochs=40)
    model, guide, _ = bnn.fit_bnn(digits, config)
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


def test_headline_metrics_are_kept_in_the_cache(monkeypatch):
    """The results page and the CLI read the chapter's metrics from the cache; metrics
    the chapter hands in are stored as they are instead of being computed again."""
    config = replace(TINY, num_epochs=1, batch_size=1024)
    first = bnn.headline_metrics(config)
    assert 0.5 < first["bnn_accuracy"] <= 1 and first["bnn_train_seconds"] > 0

    def no_prediction(*args, **kwargs):
        raise AssertionError("predicted again")

    monkeypatch.setattr(bnn, "predict_bnn", no_prediction)
    assert bnn.headline_metrics(config) == first
    given = {**first, "bnn_accuracy": 0.25}
    handed_in = bnn.headline_metrics(replace(config, seed=1), evaluated=given)
    assert handed_in["bnn_accuracy"] == 0.25
    assert bnn.headline_metrics(replace(config, seed=1))["bnn_accuracy"] == 0.25
