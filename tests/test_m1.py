"""Tests of chapter 4's M1 (the VAE that codes every image) on a tiny slice of MNIST."""

import math

import pyro
import pytest
import torch
from pyro import poutine

from bdl_src.data import load_images
from bdl_src.m1 import M1, M1Config, kl_weight, train_m1

TINY = M1Config(code_dim=6, hidden_dim=32, num_layers=1, num_epochs=4, warmup_epochs=2,
                batch_size=50, lr=3e-3, final_lr=1e-3)


@pytest.fixture(scope="module")
def images():
    return load_images("mnist", train=False).images[:200]


def tiny_m1(num_data=None):
    pyro.set_rng_seed(0)
    return M1(TINY.code_dim, TINY.hidden_dim, TINY.num_layers, num_data=num_data)


def test_sites_shapes_and_minibatch_scaling(images):
    m1 = tiny_m1(num_data=1000)
    x = images[:10]
    guide_tr = poutine.trace(m1.guide).get_trace(x)
    model_tr = poutine.trace(poutine.replay(m1.model, trace=guide_tr)).get_trace(x)
    assert model_tr.nodes["code"]["value"] is guide_tr.nodes["code"]["value"]
    assert guide_tr.nodes["code"]["value"].shape == (10, TINY.code_dim)
    assert model_tr.nodes["obs"]["fn"].event_shape == (784,)
    assert model_tr.nodes["obs"]["scale"] == pytest.approx(100.0)  # 1000 / 10
    m1.kl_weight = 0.25  # the code's terms only are down-weighted
    model_tr = poutine.trace(m1.model).get_trace(x)
    assert model_tr.nodes["code"]["scale"] == pytest.approx(25.0)
    assert model_tr.nodes["obs"]["scale"] == pytest.approx(100.0)
    assert poutine.trace(m1.guide).get_trace(x).nodes["code"]["scale"] == \
        pytest.approx(25.0)


def test_kl_weight_warms_up_then_stays_at_one():
    assert [kl_weight(TINY, e) for e in range(4)] == [0.5, 1.0, 1.0, 1.0]
    no_warmup = M1Config(warmup_epochs=0)
    assert [kl_weight(no_warmup, e) for e in range(3)] == [1.0, 1.0, 1.0]


def test_training_lowers_the_loss_and_is_seeded(images):
    m1 = tiny_m1(num_data=len(images))
    history = train_m1(m1, images, TINY)
    losses = history["epoch_losses"]
    assert len(losses) == TINY.num_epochs and all(math.isfinite(v) for v in losses)
    assert history["kl_weights"] == [0.5, 1.0, 1.0, 1.0]
    assert losses[-1] < losses[1] - 10  # nats per image, both at full KL weight
    again = tiny_m1(num_data=len(images))
    assert train_m1(again, images, TINY) == history  # same seed, same losses
    for k, v in m1.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # Pyro's own note, expected here
def test_a_nan_loss_stops_training_with_a_clear_message(images):
    m1 = tiny_m1(num_data=len(images))
    with torch.no_grad():
        m1.decoder[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="M1: the loss became nan at step 1"):
        train_m1(m1, images, TINY)
