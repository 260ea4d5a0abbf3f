"""Tests of chapter 3's VAE on tiny slices of Fashion-MNIST with small networks."""

import math
import re
from dataclasses import replace
from pathlib import Path

import pyro
import pytest
import torch
from pyro import poutine
from pyro.infer import Trace_ELBO

from bdl_src import vae as V
from bdl_src.data import load_images
from bdl_src.plots import vae as plots
from bdl_src.runs import vae as R

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


TINY = V.VAEConfig(z_dim=4, hidden_dim=32, num_layers=1, num_epochs=12, batch_size=32,
                   lr=1e-2, final_lr=1e-3, num_monitor=32)


def test_training_lowers_the_loss_on_training_and_heldout_images(images):
    x, held = images[:96], images[96:]
    vae = small_vae(num_data=len(x))
    history = V.train(vae, x, held, TINY)
    train_elbo, heldout_elbo = history["train_elbo"], history["heldout_elbo"]
    assert len(train_elbo) == len(heldout_elbo) == TINY.num_epochs
    assert all(isinstance(v, float) for v in train_elbo + heldout_elbo)  # JSON-able
    first, last = -train_elbo[0], -train_elbo[-1]
    assert last < first - 0.1 * first
    assert -heldout_elbo[-1] < -heldout_elbo[0]


def test_training_is_seeded(images):
    x, held = images[:64], images[64:]
    config = replace(TINY, num_epochs=2)
    runs = []
    for _ in range(2):
        vae = small_vae(num_data=len(x))
        runs.append((V.train(vae, x, held, config), vae.state_dict()))
    assert runs[0][0] == runs[1][0]
    for key, value in runs[0][1].items():
        assert torch.equal(runs[1][1][key], value)


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
    V.train(vae, images, images, replace(TINY, num_epochs=5))
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


def test_evaluation_in_parts_of_k_estimates_the_same_numbers(images):
    """K draws split into parts (``max_draws`` < K) give the same estimates, up to
    Monte Carlo error, as K draws at once."""
    vae = small_vae()
    x = images[:16]
    whole = V.evaluate(vae, x, num_samples=300, seed=0)
    parts = V.evaluate(vae, x, num_samples=300, seed=1, max_draws=64)
    for key in ("elbo", "log_likelihood"):
        assert parts[key] == pytest.approx(whole[key], abs=1.0)
    assert parts["log_likelihood"] >= parts["elbo"]


def test_grey_level_entropy_is_the_floor_of_the_bernoulli_loss(images):
    x = images[:8]
    floor = V.grey_level_entropy(x)
    perfect = -torch.distributions.Bernoulli(probs=x.clamp(1e-6, 1 - 1e-6),
                                             validate_args=False).log_prob(x).sum(-1)
    assert perfect.mean().item() == pytest.approx(floor, rel=1e-3)
    worse = -torch.distributions.Bernoulli(probs=torch.full_like(x, 0.3),
                                           validate_args=False).log_prob(x).sum(-1)
    assert (worse.mean() > floor)


SMALL = V.VAEConfig(z_dim=2, hidden_dim=16, num_layers=1, num_epochs=2, batch_size=64,
                    num_train=256, num_monitor=64, num_val=128)
SMALL_EVAL = V.EvalConfig(num_samples=8, num_images=32)


def test_cached_training_restores_the_same_weights_and_evaluation():
    vae, held, history, info = R.trained_vae(SMALL)
    assert not info["from_cache"] and info["examples"] == 2 * 256
    assert len(held) == 128  # the validation split
    metrics, eval_info = R.final_evaluation(vae, held, SMALL, SMALL_EVAL)
    assert not eval_info["from_cache"]
    assert metrics["log_likelihood"] >= metrics["elbo"]
    # the evaluation is the plain one, on the trained weights
    assert metrics == R.heldout_metrics(vae, held, SMALL_EVAL, SMALL.seed)
    assert metrics["elbo"] == pytest.approx(history["heldout_elbo"][-1], abs=15)

    pyro.clear_param_store()
    again, held2, history2, info2 = R.trained_vae(SMALL)
    assert info2["from_cache"] and history2 == history and torch.equal(held2, held)
    for key, value in vae.state_dict().items():
        assert torch.equal(again.state_dict()[key], value)
    metrics2, eval_info2 = R.final_evaluation(again, held2, SMALL, SMALL_EVAL)
    assert eval_info2["from_cache"] and metrics2 == metrics
    # the restored VAE is the reader's object: its methods work as before
    torch.testing.assert_close(V.reconstruct(again, held[:3]),
                               V.reconstruct(vae, held[:3]))


def test_cli_run_reports_the_results_page_keys(monkeypatch):
    monkeypatch.setattr(R, "VAEConfig", lambda seed: replace(SMALL, seed=seed))
    monkeypatch.setattr(R, "EvalConfig", lambda: SMALL_EVAL)
    first = R.cli_run(seed=1)
    assert set(first) == {
        "test negative ELBO (nats/image)",
        "test negative log-likelihood, importance-sampled",
        "importance samples per image", "epochs", "SVI seconds", "evaluation seconds",
        "from cache"}
    assert first["epochs"] == 2 and first["importance samples per image"] == 8
    assert not first["from cache"]
    again = R.cli_run(seed=1)
    assert again["from cache"]
    assert again["test negative ELBO (nats/image)"] == \
        first["test negative ELBO (nats/image)"]


def test_figures_build(images):
    vae = small_vae()
    fig = plots.elbo_curves([-300.0, -260.0, -250.0], [-280.0, -262.0, -255.0])
    assert fig.axes
    plots.image_rows([images[:4], V.reconstruct(vae, images[:4])], ["test", "recon"])
    plots.latent_scatter(torch.randn(50, 2), torch.arange(50) % 10, list("abcdefghij"))
    plots.grid(V.sample_prior(vae, 6), 2, 3)


def test_page_trains_with_the_runs_cache_entry():
    """The page's visible ``cached("vae", ...)`` call must match ``runs.vae``'s, so that
    page, CLI and results page share one cache entry."""
    text = BOOK_PAGE.read_text()
    call = re.search(r'cached\("vae", config, train, vae, x, held, config,\s*'
                     r'code=\(([\w, ]+)\)\)', text)
    assert call, "the page's cached call changed: keep it equal to runs.vae's"
    assert call.group(1).split(", ") == [f.__name__ for f in R.TRAIN_CODE]
    assert "final_evaluation(vae, held, config" in text


def test_flow_guide_density_matches_a_hand_computed_one(images):
    """One affine autoregressive step: z = loc(z0, h) + exp(log_scale(z0, h)) * z0 with
    z0 from the encoder's Gaussian, so log q(z) = log N(z0) - sum(log_scale)."""
    pyro.set_rng_seed(0)
    vae = V.VAE(z_dim=3, hidden_dim=16, num_layers=1, num_flows=1)
    x = images[:5]
    loc, scale, context = vae.encoder(x)
    assert context.shape == (5, 6)
    z0 = torch.randn(5, 3)
    shift, log_scale = vae.flows[0].nn(z0, context=context)
    z = shift + log_scale.exp() * z0
    hand = (torch.distributions.Normal(loc, scale).log_prob(z0).sum(-1)
            - log_scale.sum(-1))
    guide_tr = poutine.trace(poutine.condition(vae.guide, data={"z": z})).get_trace(x)
    q = guide_tr.nodes["z"]["fn"]  # scores z by inverting the flow, coordinate-wise
    assert torch.allclose(q.log_prob(z), hand, atol=1e-4)


def test_flow_guide_trains_and_its_importance_estimate_is_above_its_elbo(images):
    x, held = images[:96], images[96:]
    pyro.set_rng_seed(0)
    vae = V.VAE(z_dim=4, hidden_dim=32, num_layers=1, num_data=len(x), num_flows=2)
    history = V.train(vae, x, held, replace(TINY, num_epochs=5))
    assert -history["train_elbo"][-1] < -history["train_elbo"][0]
    vae.num_data = None
    metrics = V.evaluate(vae, held, num_samples=50, per_image=True)
    assert metrics["log_likelihood"] >= metrics["elbo"]
    assert len(metrics["elbo_per_image"]) == len(held)


def test_binarisation_of_a_test_set_is_fixed_and_binary(images):
    a, b = V.binarize(images, seed=0), V.binarize(images, seed=0)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(a, V.binarize(images, seed=1))
    assert a.mean().item() == pytest.approx(images.mean().item(), abs=0.01)


def test_dynamic_binarisation_trains_on_fresh_zero_one_images(images, monkeypatch):
    seen = []
    step = pyro.infer.SVI.step

    def recording_step(svi, batch):
        seen.append(batch.clone())
        return step(svi, batch)

    monkeypatch.setattr(pyro.infer.SVI, "step", recording_step)
    x = images[:32]
    vae = small_vae(num_data=len(x))
    V.train(vae, x, x, replace(TINY, num_epochs=2, batch_size=32, binarize=True))
    assert len(seen) == 2 and all(set(b.unique().tolist()) <= {0.0, 1.0} for b in seen)
    assert not torch.equal(seen[0].sort(0).values, seen[1].sort(0).values)
