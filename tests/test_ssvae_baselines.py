"""Tests of chapter 4's labelled-only baselines on a tiny slice of MNIST."""

import pytest
import torch

from bdl_src.data import ImageData, load_images
from bdl_src.m1 import M1Config
from bdl_src.ssvae_baselines import (
    BaselineConfig,
    PixelClassifier,
    predict,
    train_baseline,
)


@pytest.fixture(scope="module")
def mnist():
    data = load_images("mnist", train=False)
    return data.images[:400], data.labels[:400]


def tiny_net(dropout=0.0):
    torch.manual_seed(0)
    return PixelClassifier(M1Config(code_dim=8, hidden_dim=32, num_layers=1),
                           hidden_dim=32, dropout=dropout)


def test_pixel_classifier_is_the_m1_trunk_then_the_classifier_with_dropout():
    net = tiny_net(dropout=0.5)
    x = torch.rand(3, 784)
    assert net(x).shape == (3, 10)
    net.eval()  # no dropout: deterministic, and the composition of the two parts
    assert torch.equal(net(x), net.classifier(net.trunk(x)))
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))  # dropout on while training
    probs = predict(net, x)
    assert not net.training and torch.allclose(probs.sum(-1), torch.ones(3))


def test_training_learns_and_keeps_the_best_checked_weights(mnist):
    x, y = mnist
    val = ImageData(x[300:], y[300:])
    config = BaselineConfig(num_steps=60, batch_size=50, lr=3e-3, eval_every=20)
    net = tiny_net()
    history = train_baseline(net, x[:300], y[:300], val, config)
    assert history["steps"] == [20, 40, 60]
    best = max(history["val_accuracy"])
    assert history["best_step"] == history["steps"][history["val_accuracy"].index(best)]
    with torch.no_grad():  # the weights kept are the best check's
        kept = (net(val.images).argmax(-1) == val.labels).float().mean().item()
    assert kept == best and best > 0.5  # far above chance (0.1) after 60 steps
    again = tiny_net()
    assert train_baseline(again, x[:300], y[:300], val, config) == history  # seeded


def test_a_nan_loss_stops_training_with_a_clear_message(mnist):
    x, y = mnist
    net = tiny_net()
    with torch.no_grad():
        net.classifier.net[-1].bias.fill_(float("nan"))
    config = BaselineConfig(num_steps=5, batch_size=50, eval_every=5)
    with pytest.raises(FloatingPointError, match="labelled only: the loss became nan"):
        train_baseline(net, x[:100], y[:100], ImageData(x[100:], y[100:]), config)
