"""Chapter 4, step 2: the semi-supervised VAE M2 (Kingma et al. 2014) on the code of M1
(their "M1+M2"), with few labels. Shown in book/ssvae.md.

M1 (``bdl_src.m1``) is trained first and encodes every image once
(``bdl_src.ssvae_data.encode``); M2's data is then that code, not the pixels. ``SSVAE``
explains each code by a digit ``y`` and a style ``z``. Its ``model`` and ``guide`` take
the same arguments ``(codes, ys=None)``: with ``ys`` the digit is observed; without it
the guide's ``y`` is enumerated, so the ELBO sums exactly over the ten digits.
``model_classify`` and ``guide_classify`` add Kingma's extra classification loss on the
labelled codes; ``SSVAELoss`` adds up one step's three terms and ``train_ssvae`` is the
SVI loop.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, config_enumerate
from torch import nn

from bdl_src.m1 import M1Config
from bdl_src.nets import loc_scale, mlp
from bdl_src.ssvae_data import NUM_CLASSES, CodeData, CodeSplit
from bdl_src.train import (
    check_finite,
    cycle_batches,
    lr_decay,
    minibatches,
    num_batches,
    progress,
)


@dataclass(frozen=True)
class SSVAEConfig:
    """Data, network sizes and training settings of M2 (the defaults are the book's)."""

    num_labels: int = 100  # labels kept: num_labels / 10 of each digit, at random
    draw: int = 0  # which random draw of the labelled images (the seed of the draw)
    z_dim: int = 16  # style dimensions
    hidden_dim: int = 300  # units in the hidden layer of each of M2's three networks
    alpha: float = 0.01  # weight of the classification loss per labelled image, as a
    #                      multiple of the number of training images (Kingma: 0.1)
    num_epochs: int = 12  # passes over the unlabelled codes
    batch_size: int = 200  # unlabelled codes per step
    labelled_batch_size: int = 50  # labelled codes per step (the labelled set cycles)
    lr: float = 3e-3  # Adam's learning rate at the first step ...
    final_lr: float = 3e-4  # ... decayed geometrically, step by step, to this one
    draw_codes: bool = True  # codes drawn from q(code | x) anew; False: their means
    m1: M1Config = field(default_factory=M1Config)  # the code M2 models
    num_val: int = 5000  # training images held out for choosing settings (never test)
    num_train: int | None = None  # None: every remaining training image; n: the first n
    seed: int = 0  # the validation split, M1, and M2's initial weights and batches


class Classifier(nn.Module):
    """code (..., code_dim) -> logits (..., 10) of q(y | code)."""

    def __init__(self, code_dim: int, hidden_dim: int):
        super().__init__()
        self.net = mlp([code_dim, hidden_dim, NUM_CLASSES], nn.ReLU)

    def forward(self, code):
        return self.net(code)


class DigitConditioned(nn.Module):
    """(x, y) -> loc, scale (..., out_dim) of a Normal given an input and a digit: M2's
    style encoder q(z | code, y) (x = code) and its decoder p(code | z, y) (x = z).

    The first layer is W_x x + W_y[y]: x passes through W_x once per code, however
    many digits ``y`` holds (ten when enumerated); broadcasting does the rest.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int):
        super().__init__()
        self.fc_x = nn.Linear(in_dim, hidden_dim)
        self.fc_y = nn.Embedding(NUM_CLASSES, hidden_dim)
        self.out = nn.Linear(hidden_dim, 2 * out_dim)

    def forward(self, x, y):
        return loc_scale(self.out(torch.relu(self.fc_x(x) + self.fc_y(y))))


class SSVAE(nn.Module):
    """Kingma et al.'s M2, modelling the code that a trained M1 gives each image
    (their "M1+M2").

    Model:  y_n ~ Categorical(1/10, ..., 1/10)                 digit, observed or not
            z_n ~ Normal(0, I)                                 style (z_dim,)
            code_n ~ Normal(decoder(z_n, y_n))                 observed (code_dim,)
    Guide:  y_n ~ Categorical(softmax(classifier(code_n)))     only where y_n is missing
            z_n ~ Normal(encoder(code_n, y_n))

    ``codes`` has shape (batch, code_dim) and ``ys`` (batch,) digits, or None. With
    ``num_labelled``/``num_unlabelled`` set, a batch stands for the whole labelled or
    unlabelled set: its log densities are scaled by ``num_... / batch``.
    """

    def __init__(self, code_dim: int = 50, z_dim: int = 16, hidden_dim: int = 300,
                 num_labelled: int | None = None, num_unlabelled: int | None = None):
        super().__init__()
        self.code_dim, self.z_dim = code_dim, z_dim
        self.num_labelled, self.num_unlabelled = num_labelled, num_unlabelled
        self.classifier = Classifier(code_dim, hidden_dim)
        self.encoder = DigitConditioned(code_dim, z_dim, hidden_dim)  # q(z | code, y)
        self.decoder = DigitConditioned(z_dim, code_dim, hidden_dim)  # p(code | z, y)

    def scale(self, codes, ys) -> float:
        num_data = self.num_unlabelled if ys is None else self.num_labelled
        return 1.0 if num_data is None else num_data / codes.shape[0]

    def model(self, codes, ys=None):
        pyro.module("decoder", self.decoder)
        with pyro.plate("data", codes.shape[0]), \
                poutine.scale(scale=self.scale(codes, ys)):
            # Observed when ys is given; otherwise replayed from the guide's
            # enumeration: y has shape (10, 1), so the next lines run for all ten
            # digits at once.
            ys = pyro.sample("y", dist.Categorical(logits=codes.new_zeros(NUM_CLASSES)),
                             obs=ys)
            loc = codes.new_zeros(codes.shape[0], self.z_dim)
            zs = pyro.sample("z", dist.Normal(loc, 1.0).to_event(1))
            pyro.sample("code", dist.Normal(*self.decoder(zs, ys)).to_event(1),
                        obs=codes)

    @config_enumerate  # TraceEnum_ELBO sums over the ten values of y, no sampling
    def guide(self, codes, ys=None):
        pyro.module("classifier", self.classifier)
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", codes.shape[0]), \
                poutine.scale(scale=self.scale(codes, ys)):
            if ys is None:
                ys = pyro.sample("y", dist.Categorical(logits=self.classifier(codes)))
            pyro.sample("z", dist.Normal(*self.encoder(codes, ys)).to_event(1))

    def model_classify(self, codes, ys, alpha: float = 1.0):
        """The classification loss as a model: ``ys`` observed under q(y | code),
        weighted by ``alpha`` per labelled code on top of the data-set scaling."""
        pyro.module("classifier", self.classifier)
        with pyro.plate("data", codes.shape[0]), \
                poutine.scale(scale=alpha * self.scale(codes, ys)):
            pyro.sample("y_aux", dist.Categorical(logits=self.classifier(codes)),
                        obs=ys)

    def guide_classify(self, codes, ys, alpha: float = 1.0):
        """Nothing to infer: the classification "model" has no latent variable."""


class SSVAELoss:
    """The objective of one step, a differentiable scalar that ``SVI`` minimises.

    ``loss(model, guide, cu, cl, yl)``: the negative ELBO of the unlabelled codes ``cu``
    with y summed out, plus the negative ELBO of the labelled codes ``(cl, yl)``, plus
    ``alpha`` times the classification loss of the labelled codes.
    """

    def __init__(self, ssvae: SSVAE, alpha: float):
        self.ssvae, self.alpha = ssvae, alpha
        # max_plate_nesting=1: the data plate is dim -1, so enumeration takes dim -2.
        self.enum_elbo = TraceEnum_ELBO(max_plate_nesting=1)
        self.elbo = Trace_ELBO(max_plate_nesting=1)

    def __call__(self, model, guide, cu, cl, yl):
        unlabelled = self.enum_elbo.differentiable_loss(model, guide, cu)
        labelled = self.elbo.differentiable_loss(model, guide, cl, yl)
        classify = self.elbo.differentiable_loss(
            self.ssvae.model_classify, self.ssvae.guide_classify, cl, yl, self.alpha)
        return unlabelled + labelled + classify


@torch.no_grad()
def classify(ssvae: SSVAE, codes: torch.Tensor) -> torch.Tensor:
    """q(y | code) for each code (M1's mean code of an image): (N, 10)."""
    return ssvae.classifier(codes).softmax(-1)


@torch.no_grad()
def accuracy(ssvae: SSVAE, codes: CodeSplit) -> float:
    """Share of images whose most probable digit under q(y | code) is the true one,
    reading each image's mean code."""
    return (classify(ssvae, codes.loc).argmax(-1) == codes.labels).float().mean().item()


def train_ssvae(ssvae: SSVAE, codes: CodeData, config: SSVAEConfig) -> dict:
    """Fit M2 by SVI on M1's codes: each step pairs a batch of unlabelled codes with a
    batch of labelled ones, every code drawn anew from M1's q(code | x) (once an epoch
    for the unlabelled ones, at every step for the few labelled ones that recur; means
    instead if ``config.draw_codes`` is False); Adam's learning rate decays a little
    after every step. Shown in book/ssvae.md.

    Returns the loss of every step (per training image), the accuracy of q(y | code)
    on the validation and test images after every epoch, and the seconds since the
    start at the end of every epoch. Raises ``FloatingPointError`` as soon as a loss is
    NaN.
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    unlabelled, labelled = codes.unlabelled, codes.labelled
    num_data = len(unlabelled) + len(labelled)
    desc = f"SS-VAE, {len(labelled)} labels"
    steps_per_epoch = num_batches(len(unlabelled), config.batch_size)
    optim = pyro.optim.ExponentialLR({
        "optimizer": torch.optim.Adam, "optim_args": {"lr": config.lr},
        "gamma": lr_decay(config.lr, config.final_lr,
                          config.num_epochs * steps_per_epoch - 1)})
    loss = SSVAELoss(ssvae, alpha=config.alpha * num_data)
    svi = SVI(ssvae.model, ssvae.guide, optim, loss=loss)
    # Endless batches of labelled indices: the small labelled set is revisited.
    labelled_batches = cycle_batches(
        len(labelled), min(config.labelled_batch_size, len(labelled)), generator)
    history = {"losses": [], "epoch_val_accuracy": [], "epoch_test_accuracy": [],
               "epoch_seconds": [], "steps_per_epoch": steps_per_epoch}
    start = time.perf_counter()
    for epoch in progress(range(config.num_epochs), desc=desc):
        cu = unlabelled.draw(generator) if config.draw_codes else unlabelled.loc
        for (cu_batch,) in minibatches((cu,), config.batch_size, generator):
            idx = next(labelled_batches).to(labelled.loc.device)
            # The few labelled codes recur every few steps: a fresh draw each time.
            cl_batch = labelled.draw(generator, idx) if config.draw_codes \
                else labelled.loc[idx]
            step = len(history["losses"]) + 1
            try:
                value = svi.step(cu_batch, cl_batch, labelled.labels[idx]) / num_data
            except ValueError as err:  # Pyro's check of a distribution's arguments
                if "invalid values" not in str(err):
                    raise
                check_finite(math.nan, desc, step, epoch + 1, err)
            optim.step()  # the next step's learning rate
            check_finite(value, desc, step, epoch + 1)
            history["losses"].append(value)
        history["epoch_seconds"].append(time.perf_counter() - start)
        history["epoch_val_accuracy"].append(accuracy(ssvae, codes.val))
        history["epoch_test_accuracy"].append(accuracy(ssvae, codes.test))
    return history
