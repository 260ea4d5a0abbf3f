"""Chapter 2's baselines on small data: each trains and predicts with the right shapes,
temperature scaling lowers the validation NLL, the ensemble is more uncertain on noise
than on its training digits, the last-layer Laplace matches a dense reference, the
rotation sweep gives one row per angle."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from bdl_src import baselines, bnn, metrics
from bdl_src.baselines import NetConfig
from bdl_src.data import ImageData, load_images
from bdl_src.runs import bnn as runs

TINY = replace(NetConfig(), hidden_dim=32, num_epochs=3, batch_size=100)


@pytest.fixture(scope="module")
def digits() -> ImageData:
    return load_images("mnist", train=True).subset(slice(0, 1000))


@pytest.fixture(scope="module")
def held_out() -> ImageData:
    return load_images("mnist", train=True).subset(slice(1000, 1500))


def train(digits, config=TINY):
    torch.manual_seed(config.seed)
    net = bnn.DeterministicMLP(config.hidden_dim, dropout=config.dropout)
    history = bnn.train_twin(net, digits.images, digits.labels, config)
    return net, history


def test_each_baseline_trains_and_predicts_with_the_right_shapes(digits):
    x = digits.images[:7]
    net, history = train(digits)
    assert history["epoch_losses"][-1] < history["epoch_losses"][0]
    assert baselines.predict_scaled(net, x, 2.0).shape == (1, 7, 10)
    dropout, _ = train(digits, replace(TINY, dropout=0.2))
    sp = baselines.predict_mc_dropout(dropout, x, num_samples=6, seed=0)
    assert sp.shape == (6, 7, 10)
    assert not torch.allclose(sp[0], sp[1])  # a different mask per sample
    assert torch.equal(sp, baselines.predict_mc_dropout(dropout, x, 6, seed=0))
    assert not dropout.training  # left with dropout off
    members = [train(digits, replace(TINY, seed=s))[0] for s in range(3)]
    assert baselines.predict_ensemble(members, x).shape == (3, 7, 10)
    fit = baselines.fit_last_layer_laplace(net, digits.images)
    lp = baselines.predict_laplace(net, fit, x, prior_precision=1.0, num_samples=5)
    assert lp.shape == (5, 7, 10)
    for p in (sp, lp):
        assert torch.allclose(p.sum(-1), torch.ones(p.shape[:2]), atol=1e-5)


def test_temperature_scaling_lowers_validation_nll(digits, held_out):
    # Trained to near-zero training loss on 1000 digits: overconfident on others.
    net, _ = train(digits, replace(TINY, hidden_dim=128, num_epochs=40, lr=3e-3,
                                   lr_final=3e-3))
    logits = baselines.logits_of(net, held_out.images)
    t = baselines.fit_temperature(logits, held_out.labels)
    before = F.cross_entropy(logits, held_out.labels).item()
    after = F.cross_entropy(logits / t, held_out.labels).item()
    assert t > 1  # an overconfident network is cooled
    assert after < before - 1e-3
    # and no other temperature on a grid does better
    grid = torch.linspace(0.5, 5, 46)
    assert after <= min(F.cross_entropy(logits / g, held_out.labels).item()
                        for g in grid) + 1e-4


def test_ensemble_is_more_uncertain_on_noise_than_on_training_digits(digits):
    members = [train(digits, replace(TINY, seed=s, num_epochs=20, lr=3e-3,
                                     lr_final=3e-4))[0] for s in range(5)]
    noise = torch.rand(200, 784, generator=torch.Generator().manual_seed(1))
    h_digits = metrics.predictive_entropy(
        baselines.predict_ensemble(members, digits.images[:200]))
    h_noise = metrics.predictive_entropy(baselines.predict_ensemble(members, noise))
    assert h_noise.mean() > h_digits.mean() + 0.2
    assert metrics.auroc(h_digits, h_noise) > 0.75
    mi = [metrics.mutual_information(baselines.predict_ensemble(members, x)).mean()
          for x in (digits.images[:200], noise)]
    assert mi[1] > mi[0]


def test_laplace_logit_variance_matches_the_dense_kronecker_posterior(digits):
    """The closed form of the logits' covariance equals phi^T Sigma phi with Sigma the
    inverse of the dense matrix prior_precision I + G (x) A."""
    net, _ = train(digits, replace(TINY, hidden_dim=8))
    fit = baselines.fit_last_layer_laplace(net, digits.images)
    g = fit["vec_g"] @ torch.diag(fit["eig_g"]) @ fit["vec_g"].T
    a = fit["vec_a"] @ torch.diag(fit["eig_a"]) @ fit["vec_a"].T
    tau = 3.0
    sigma = torch.linalg.inv(tau * torch.eye(10 * 9) + torch.kron(g, a))
    x = digits.images[:3]
    with torch.no_grad():
        phi = F.pad(net.features(x), (0, 1), value=1.0).double()  # (3, 9)
    # dense: logit c = W[c] . phi, with W flattened row-major (c, j)
    jac = torch.stack([torch.kron(torch.eye(10, dtype=torch.float64), p[None])
                       for p in phi])  # (3, 10, 90)
    dense = jac @ sigma @ jac.transpose(1, 2)
    sp = baselines.predict_laplace(net, fit, x, tau, num_samples=40000, seed=0)
    logits = sp.double().clamp_min(1e-30).log()
    logits = logits - logits.mean(-1, keepdim=True)  # softmax forgets a shared shift
    centre = torch.eye(10, dtype=torch.float64) - 1 / 10
    for i in range(3):
        emp = torch.cov(logits[:, i].T)
        expected = centre @ dense[i] @ centre
        tol = 0.05 * expected.diagonal().max().item()
        assert torch.allclose(emp, expected, atol=tol)


def test_prior_precision_is_chosen_on_the_grid(digits, held_out):
    net, _ = train(digits)
    fit = baselines.fit_last_layer_laplace(net, digits.images)
    tau = baselines.select_prior_precision(net, fit, held_out.images, held_out.labels,
                                           grid=[0.1, 10.0, 1e4], num_samples=5)
    assert tau in (0.1, 10.0, 1e4)


def test_rotation_sweep_has_one_row_per_angle(digits):
    data = {"test": digits}
    shifted = runs.shifted_test(data)
    assert sorted(shifted) == sorted(runs.ANGLES)
    images, labels = shifted[0]
    assert torch.allclose(images, digits.images[:runs.NUM_SHIFTED], atol=1e-5)
    turned, _ = shifted[90]
    assert not torch.allclose(turned, images)
    # a quarter turn twice is a half turn
    twice = bnn.rotate(bnn.rotate(images[:5], 90), 90)
    assert torch.allclose(twice, bnn.rotate(images[:5], 180), atol=1e-5)
    # and a half turn flips both axes
    flipped = images[:5].view(-1, 28, 28).flip(1, 2).reshape(-1, 784)
    assert torch.allclose(bnn.rotate(images[:5], 180), flipped, atol=1e-5)
    net, _ = train(digits)
    small = {**data, "val": digits.subset(slice(0, 50)),
             "fashion": digits.subset(slice(50, 100))}
    small["test"] = digits.subset(slice(0, 100))
    few = {a: (im[:20], lab[:20]) for a, (im, lab) in shifted.items()}
    out = runs.evaluate_method(lambda x: baselines.predict_scaled(net, x), small, few)
    assert list(out["shift"]) == [str(a) for a in runs.ANGLES]
    assert all(set(row) == {"accuracy", "nll", "ece", "entropy"}
               for row in out["shift"].values())
    assert out["auroc_mi"] is None and len(out["refusal"]) == len(runs.FRACTIONS)
