"""Tests of chapter 4's semi-supervised VAE (M2), its data and its digit writing, on
tiny slices of MNIST with small networks."""

import math

import numpy as np
import pyro
import pyro.distributions as dist
import pytest
import torch
from matplotlib.figure import Figure
from pyro import poutine
from pyro.infer import SVI, TraceEnum_ELBO

from bdl_src import metrics
from bdl_src.data import ImageData, load_images
from bdl_src.m1 import M1
from bdl_src.nets import GreyBernoulli, loc_scale
from bdl_src.plots import ssvae as plots
from bdl_src.ssvae import SSVAE, SSVAEConfig, SSVAELoss, accuracy, classify, train_ssvae
from bdl_src.ssvae_data import SplitData, encode, keep_labels, split_data
from bdl_src.ssvae_generate import encode_style, sample_digits, style_grid, write_digits

CODE, Z, HIDDEN = 6, 3, 16


@pytest.fixture(scope="module")
def mnist():
    data = load_images("mnist", train=False)
    return data.images[:300], data.labels[:300]


def tiny_m1():
    pyro.set_rng_seed(0)
    return M1(CODE, HIDDEN, num_layers=1).eval()


def tiny_ssvae(num_labelled=None, num_unlabelled=None):
    pyro.set_rng_seed(0)
    return SSVAE(CODE, z_dim=Z, hidden_dim=HIDDEN, num_labelled=num_labelled,
                 num_unlabelled=num_unlabelled)


def codes(n, seed=0):
    return torch.randn(n, CODE, generator=torch.Generator().manual_seed(seed))


def tiny_codes(mnist, num_labelled=20, num_unlabelled=100):
    x, y = mnist

    def part(a, b):
        return ImageData(x[a:b], y[a:b])

    data = SplitData(labelled=part(0, num_labelled),
                     unlabelled=part(num_labelled, num_labelled + num_unlabelled),
                     val=part(200, 250), test=part(250, 300))
    return encode(tiny_m1(), data)


def tiny_config(**changes):
    return SSVAEConfig(**{"num_labels": 20, "z_dim": Z, "hidden_dim": HIDDEN,
                          "num_epochs": 2, "batch_size": 50, "labelled_batch_size": 10,
                          **changes})


# --- data -----------------------------------------------------------------------------


def test_labels_kept_are_class_balanced_and_seeded():
    labels = load_images("mnist", train=True).labels[:5000]
    keep = keep_labels(labels, 100, seed=0)
    assert len(keep) == len(set(keep.tolist())) == 100
    assert torch.bincount(labels[keep], minlength=10).tolist() == [10] * 10
    assert torch.equal(keep, keep_labels(labels, 100, seed=0))
    assert not torch.equal(keep, keep_labels(labels, 100, seed=1))
    with pytest.raises(ValueError):
        keep_labels(labels, 105)


def test_split_keeps_the_labels_asked_for_and_loses_no_image():
    data = split_data(num_labels=50, num_val=100, num_train=400)
    assert len(data.labelled) == 50 and len(data.unlabelled) == 350
    assert len(data.val) == 100 and len(data.test) == 10_000
    assert torch.bincount(data.labelled.labels, minlength=10).tolist() == [5] * 10
    assert data.train_images().shape == (400, 784)
    other = split_data(num_labels=50, num_val=100, num_train=400, draw=1)
    assert torch.bincount(other.labelled.labels, minlength=10).tolist() == [5] * 10
    assert not torch.equal(other.labelled.images, data.labelled.images)  # a new draw
    assert torch.equal(other.val.images, data.val.images)  # of the same split
    unlabelled_only = split_data(num_labels=0, num_val=100, num_train=400)
    assert torch.equal(unlabelled_only.train_images(),
                       unlabelled_only.unlabelled.images)


# --- model, guide and loss ------------------------------------------------------------


def test_sites_shapes_enumeration_and_scaling():
    ssvae = tiny_ssvae(num_labelled=40, num_unlabelled=1000)
    c = codes(10)
    enum_guide = poutine.enum(ssvae.guide, first_available_dim=-2)
    guide_tr = poutine.trace(enum_guide).get_trace(c)
    model_tr = poutine.trace(poutine.replay(ssvae.model, trace=guide_tr)).get_trace(c)
    # y is enumerated in parallel: its ten values sit in dim -2, left of the plate.
    assert guide_tr.nodes["y"]["value"].shape == (10, 1)
    assert guide_tr.nodes["z"]["value"].shape == (10, 10, Z)
    assert "code" not in guide_tr.nodes  # the code is M2's data, not a latent
    assert model_tr.nodes["code"]["is_observed"]
    assert model_tr.nodes["code"]["fn"].batch_shape == (10, 10)
    assert model_tr.nodes["code"]["fn"].event_shape == (CODE,)
    for tr in (model_tr, guide_tr):
        for name in ("y", "z"):
            assert [f.name for f in tr.nodes[name]["cond_indep_stack"]] == ["data"]
            assert tr.nodes[name]["scale"] == pytest.approx(100.0)  # 1000 / 10
    labelled_tr = poutine.trace(ssvae.model).get_trace(c, torch.arange(10))
    assert labelled_tr.nodes["y"]["is_observed"]
    assert labelled_tr.nodes["code"]["scale"] == pytest.approx(4.0)  # 40 / 10


def test_enumerated_elbo_equals_explicit_sum_over_the_ten_labels():
    ssvae = tiny_ssvae()
    c = codes(5)
    pyro.set_rng_seed(1)
    loss = TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(ssvae.model,
                                                                     ssvae.guide, c)
    # The same draws of z again (one for every digit), scored by hand.
    pyro.set_rng_seed(1)
    tr = poutine.trace(poutine.enum(ssvae.guide, first_available_dim=-2)).get_trace(c)
    z = tr.nodes["z"]["value"]

    def normal(loc, scale, value):
        return dist.Normal(loc, scale).log_prob(value).sum(-1)

    with torch.no_grad():
        log_q_y = ssvae.classifier(c).log_softmax(-1)
        per_label = []
        for k in range(10):
            y = torch.full((5,), k)
            log_p = (math.log(0.1) + normal(0.0, 1.0, z[k])
                     + normal(*ssvae.decoder(z[k], y), c))
            log_q = normal(*ssvae.encoder(c, y), z[k]) + log_q_y[:, k]
            per_label.append(log_p - log_q)
        per_label = torch.stack(per_label, -1)  # (5 codes, 10 digits)
        elbo = (log_q_y.exp() * per_label).sum(-1)
    assert loss.item() == pytest.approx(-elbo.sum().item(), rel=1e-5)


def test_a_few_steps_on_a_tiny_mixed_batch_lower_the_loss(mnist):
    data = tiny_codes(mnist, num_labelled=20, num_unlabelled=64)
    gen = torch.Generator().manual_seed(0)
    cu, cl = data.unlabelled.draw(gen), data.labelled.draw(gen)
    yl = data.labelled.labels
    ssvae = tiny_ssvae(num_labelled=20, num_unlabelled=64)
    loss = SSVAELoss(ssvae, alpha=10.0)
    pyro.clear_param_store()
    svi = SVI(ssvae.model, ssvae.guide, pyro.optim.Adam({"lr": 1e-2}), loss=loss)

    def seeded_loss():  # the same draws of the style every time
        pyro.set_rng_seed(5)
        return loss(ssvae.model, ssvae.guide, cu, cl, yl).item()

    before = seeded_loss()
    losses = [svi.step(cu, cl, yl) for _ in range(40)]
    assert all(math.isfinite(v) for v in losses)
    assert seeded_loss() < before - 84  # at least a nat per code


def test_the_classification_loss_is_the_weighted_cross_entropy(mnist):
    ssvae = tiny_ssvae(num_labelled=40)
    c, y = codes(8), mnist[1][:8]
    loss = pyro.infer.Trace_ELBO().differentiable_loss(
        ssvae.model_classify, ssvae.guide_classify, c, y, 3.0)
    with torch.no_grad():
        expected = 3.0 * 40 / 8 * torch.nn.functional.cross_entropy(
            ssvae.classifier(c), y, reduction="sum")
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_codes_are_m1s_encoding_and_draws_follow_q(mnist):
    m1 = tiny_m1()
    data = tiny_codes(mnist)
    loc, scale = m1.encode(mnist[0][20:120])
    assert torch.allclose(data.unlabelled.loc, loc) and torch.allclose(
        data.unlabelled.scale, scale)
    assert torch.equal(data.test.labels, mnist[1][250:300])
    gen = torch.Generator().manual_seed(0)
    draws = torch.stack([data.unlabelled.draw(gen) for _ in range(400)])
    assert not torch.equal(draws[0], draws[1])  # a new code every epoch
    some = data.unlabelled.draw(torch.Generator().manual_seed(1), torch.tensor([0, 3]))
    assert some.shape == (2, CODE)  # a draw of the codes the index picks
    assert torch.allclose(draws.mean(0), loc, atol=4 * scale.max().item() / 20)
    assert torch.allclose(draws.std(0), scale, rtol=0.2)


def test_scales_are_bounded_below():
    loc, scale = loc_scale(torch.tensor([[0.0, -1e4]]))
    assert scale.item() >= 1e-3 and math.isfinite(dist.Normal(loc, scale)
                                                   .log_prob(torch.zeros(1)).item())


def test_grey_bernoulli_matches_torch():
    logits = torch.randn(4, 784) * 30
    x = torch.rand(4, 784)
    fast = GreyBernoulli(logits=logits, validate_args=False).log_prob(x)
    slow = -torch.nn.functional.binary_cross_entropy_with_logits(logits, x,
                                                                 reduction="none")
    assert torch.allclose(fast, slow, atol=1e-4)
    logits.requires_grad_(True)
    GreyBernoulli(logits=logits, validate_args=False).log_prob(x).sum().backward()
    assert torch.allclose(logits.grad, x - torch.sigmoid(logits.detach()), atol=1e-6)


# --- the training loop ----------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Encountered NaN")  # Pyro's own note, expected here
@pytest.mark.parametrize("where", ["decoder.out.bias", "encoder.out.bias"])
def test_a_nan_loss_stops_training_with_a_clear_message(mnist, where):
    # A NaN in M2 fails Pyro's check of the arguments of a distribution before the
    # loss is computed: training must stop with the same clear error as a NaN loss.
    data = tiny_codes(mnist)
    ssvae = tiny_ssvae(len(data.labelled), len(data.unlabelled))
    with torch.no_grad():
        ssvae.get_parameter(where).fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="loss became nan at step 1"):
        train_ssvae(ssvae, data, tiny_config(num_epochs=1))


def test_training_loop_logs_losses_and_accuracies_and_is_seeded(mnist):
    data = tiny_codes(mnist)
    ssvae = tiny_ssvae(len(data.labelled), len(data.unlabelled))
    history = train_ssvae(ssvae, data, tiny_config())
    assert len(history["losses"]) == 2 * history["steps_per_epoch"] == 4
    assert len(history["epoch_test_accuracy"]) == 2
    assert len(history["epoch_val_accuracy"]) == 2
    assert all(0 <= a <= 1 for a in history["epoch_test_accuracy"])
    assert history["epoch_test_accuracy"][-1] == accuracy(ssvae, data.test)
    assert history["epoch_seconds"] == sorted(history["epoch_seconds"])
    again = tiny_ssvae(len(data.labelled), len(data.unlabelled))
    assert train_ssvae(again, data, tiny_config())["losses"] == history["losses"]


def test_training_lowers_the_loss(mnist):
    data = tiny_codes(mnist, num_labelled=20, num_unlabelled=180)
    ssvae = tiny_ssvae(len(data.labelled), len(data.unlabelled))
    losses = train_ssvae(ssvae, data, tiny_config(num_epochs=10, lr=1e-2))["losses"]
    assert np.mean(losses[-8:]) < np.mean(losses[:4]) - 1  # nats per image


# --- what the trained model does ------------------------------------------------------


def test_conditional_generation_shapes(mnist):
    ssvae, m1 = tiny_ssvae(), tiny_m1()
    x, y = mnist[0][:4], mnist[1][:4]
    assert encode_style(ssvae, m1, x, y).shape == (4, Z)
    assert encode_style(ssvae, m1, x).shape == (4, Z)  # digits inferred by q(y|x)
    grid = style_grid(ssvae, m1, x, y)
    assert grid.shape == (4, 10, 784) and ((grid >= 0) & (grid <= 1)).all()
    # One style per row: row i is style i written as each digit 0..9.
    z = encode_style(ssvae, m1, x, y)
    assert torch.allclose(grid[2], write_digits(ssvae, m1, z[2:3])[0])
    samples = sample_digits(ssvae, m1, 3, seed=1)
    assert samples.shape == (3, 10, 784)
    assert torch.equal(samples, sample_digits(ssvae, m1, 3, seed=1))
    probs = classify(ssvae, m1.encode(x)[0])
    assert probs.shape == (4, 10) and torch.allclose(probs.sum(-1), torch.ones(4))


def test_plots_return_figures(mnist):
    x, y = mnist
    losses = list(np.linspace(9, 1, 60))
    assert isinstance(plots.loss_curves({"100 labels": (losses, 10)}, window=5), Figure)
    assert isinstance(plots.accuracy_curves({(100, 0): [0.5, 0.7], (100, 1): [0.6, 0.7],
                                             (3000, 0): [0.9, 0.95]}), Figure)
    methods = {"M1+M2": ([0.9, 0.96], [0.01, 0.0]),
               "labels-only MLP": ([0.7, 0.93], [0.02, 0.0])}
    assert isinstance(plots.accuracy_vs_labels([100, 3000], methods), Figure)
    assert isinstance(plots.accuracy_vs_labels(
        [100, 3000], methods, published={"Kingma et al.": {100: 0.97}}), Figure)
    r = metrics.reliability(torch.full((20, 10), 0.1).softmax(-1), y[:20])
    assert isinstance(plots.reliability_diagrams(
        {"100 labels": {"M1+M2": r}, "3000 labels": {"M1+M2": r}}), Figure)
    assert isinstance(plots.labelled_images(x[:20], y[:20]), Figure)
    grid = np.random.rand(3, 10, 784)
    assert isinstance(plots.digit_grid(grid, row_images=x[:3]), Figure)
    assert isinstance(plots.digit_grid(grid), Figure)
    probs = np.full((5, 10), 0.1)
    probs[:, 3] = 0.5
    assert isinstance(plots.inferred_labels(x[:5], probs, y[:5], ncols=3), Figure)
