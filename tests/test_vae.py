"""Tests of chapter 3's VAE on tiny slices of Fashion-MNIST with small networks."""

import math
import re
from pathlib import Path

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO

from bdl_src import train
from bdl_src import vae as V
from bdl_src.data import load_images
from bdl_src.plots import vae as plots

BOOK_PAGE = Path(__file__).resolve().parent.parent / "book" / "vae.md"


@pytest.fixture(scope="module")
def images():
    return load_images("fashion", train=False).images[:128]


def small_vae(num_data=None):
    pyro.set_rng_seed(0)
    return V.VAE(z_dim=4, hidden_dim=32, num_layers=1, num_data=num_data)


def test_model_and_guide_sites_and_minibatch_scaling(images):
    vae = small_vae(num_data=1000)
    x = images[:10]
    guide_tr = poutine.trace(vae.guide).get_trace(x)
    model_tr = poutine.trace(poutine.replay(vae.model, trace=guide_tr)).get_trace(x)
    assert model_tr.nodes["z"]["value"] is guide_tr.nodes["z"]["value"]
    assert model_tr.nodes["z"]["fn"].batch_shape == (10,)
    assert model_tr.nodes["obs"]["fn"].event_shape == (784,)
    for tr in (model_tr, guide_tr):
        site = tr.nodes["z"]
        assert [f.name for f in site["cond_indep_stack"]] == ["data"]
        assert site["scale"] == pytest.approx(100.0)  # 1000 images / batch of 10
    assert model_tr.nodes["obs"]["scale"] == pytest.approx(100.0)


def test_a_few_svi_steps_lower_the_loss(images):
    vae = small_vae(num_data=len(images))
    log = train.run_svi(vae.model, vae.guide, (images,),
                        optim=pyro.optim.Adam({"lr": 1e-2}), loss=Trace_ELBO(),
                        num_epochs=12, batch_size=32, seed=0)
    first, last = log.epoch_losses[0], log.epoch_losses[-1]
    assert last < first - 0.1 * abs(first)


def test_shapes_of_reconstructions_samples_and_interpolations(images):
    vae = small_vae()
    loc, scale = V.encode(vae, images[:5])
    assert loc.shape == scale.shape == (5, 4) and (scale > 0).all()
    recon = V.reconstruct(vae, images[:5])
    assert recon.shape == (5, 784) and ((recon >= 0) & (recon <= 1)).all()
    probs = V.sample_prior(vae, 7, seed=1)
    binary = V.sample_prior(vae, 7, seed=1, binary=True)
    assert probs.shape == binary.shape == (7, 784)
    assert set(binary.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(probs, V.sample_prior(vae, 7, seed=1))  # seeded
    path = V.interpolate(vae, images[0], images[1], num_steps=6)
    assert path.shape == (6, 784)
    torch.testing.assert_close(path[0], recon[0])
    torch.testing.assert_close(path[-1], recon[1])
    flat, explained = V.pca_2d(loc)
    assert flat.shape == (5, 2) and 0 < explained <= 1
    assert 0 <= V.active_units(loc) <= 4


def test_importance_sampled_estimate_is_above_the_elbo(images):
    vae = small_vae(num_data=len(images))
    train.run_svi(vae.model, vae.guide, (images,), optim=pyro.optim.Adam({"lr": 1e-2}),
                  num_epochs=5, batch_size=32, seed=0)
    vae.num_data = None
    x = images[:32]
    # Pyro's own ELBO estimate on the batch (many particles), per image:
    pyro.set_rng_seed(1)
    elbo = -Trace_ELBO(num_particles=500, vectorize_particles=True,
                       max_plate_nesting=1).loss(vae.model, vae.guide, x) / len(x)
    metrics = V.evaluate(vae, x, num_samples=500, seed=2)
    assert metrics["elbo"] == pytest.approx(elbo, abs=1.0)  # same bound, other draws
    assert metrics["log_likelihood"] > elbo + 0.5
    lw = V.log_weights(vae, x, 500)
    assert lw.shape == (500, 32)
    assert ((lw.logsumexp(0) - math.log(500)) >= lw.mean(0)).all()


def test_grey_level_entropy_is_the_floor_of_the_bernoulli_loss(images):
    x = images[:8]
    floor = V.grey_level_entropy(x)
    perfect = -torch.distributions.Bernoulli(probs=x.clamp(1e-6, 1 - 1e-6),
                                             validate_args=False).log_prob(x).sum(-1)
    assert perfect.mean().item() == pytest.approx(floor, rel=1e-3)
    worse = -torch.distributions.Bernoulli(probs=torch.full_like(x, 0.3),
                                           validate_args=False).log_prob(x).sum(-1)
    assert (worse.mean() > floor)


def test_fit_goes_through_the_cache():
    config = V.VAEConfig(z_dim=2, hidden_dim=16, num_layers=1, num_epochs=2,
                         batch_size=64, num_train=256, num_monitor=64, num_val=128)
    evals = V.EvalConfig(num_samples=8, num_images=32)
    vae, meta = V.fit(config, evals)
    assert not meta["from_cache"] and meta["heldout"] == "validation"
    assert len(meta["train_elbo"]) == len(meta["heldout_elbo"]) == 2
    assert meta["log_likelihood"] >= meta["elbo"]
    again, meta2 = V.fit(config, evals)
    assert meta2["from_cache"] and meta2["elbo"] == meta["elbo"]
    for key, value in vae.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value)


def test_figures_build(images):
    vae = small_vae()
    fig = plots.elbo_curves([-300.0, -260.0, -250.0], [-280.0, -262.0, -255.0])
    assert fig.axes
    plots.image_rows([images[:4], V.reconstruct(vae, images[:4])], ["test", "recon"])
    plots.latent_scatter(torch.randn(50, 2), torch.arange(50) % 10, list("abcdefghij"))
    plots.grid(V.sample_prior(vae, 6), 2, 3)


def test_page_shows_existing_code():
    if not BOOK_PAGE.exists():
        pytest.skip("book/vae.md not written yet")
    text = BOOK_PAGE.read_text()
    for target in re.findall(r":pyobject: ([\w.]+)", text):
        obj = V
        for part in target.split("."):
            obj = getattr(obj, part)  # AttributeError names a target that vanished
