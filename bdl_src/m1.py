"""Chapter 4, step 1: M1, a plain VAE that learns a code of every image without labels
(Kingma et al. 2014), and its SVI training loop ``train_m1`` (shown in book/ssvae.md).

The semi-supervised M2 (``bdl_src.ssvae``) then models this code instead of the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import SVI, TraceMeanField_ELBO
from torch import nn

from bdl_src.nets import GreyBernoulli, loc_scale, mlp
from bdl_src.train import check_finite, lr_decay, minibatches, progress

NUM_PIXELS = 784


@dataclass(frozen=True)
class M1Config:
    """The VAE that learns a code of every image (the defaults are the book's)."""

    code_dim: int = 50  # dimensions of the code
    hidden_dim: int = 500  # units in each hidden layer of its encoder and decoder
    num_layers: int = 2  # hidden layers in each of the two networks
    num_epochs: int = 15  # passes over the training images (labels unused)
    warmup_epochs: int = 5  # the KL term's weight grows from 1/5 to 1 over these epochs
    batch_size: int = 200  # images per SVI step
    lr: float = 1e-3  # Adam's learning rate in the first epoch ...
    final_lr: float = 1e-4  # ... decayed geometrically, epoch by epoch, to this one


class M1(nn.Module):
    """A VAE that gives every image a code; it never sees a label.

    Model:  code_n ~ Normal(0, I)                              (code_dim,)
            x_n ~ Bernoulli(sigmoid(decoder(code_n)))          (784,) pixels in [0, 1]
    Guide:  code_n ~ Normal(encoder(x_n))

    With ``num_data`` set, a batch stands for that many images (log densities scaled by
    ``num_data / batch``); ``kl_weight`` < 1 down-weights the code's terms (warm-up).
    """

    def __init__(self, code_dim: int = 50, hidden_dim: int = 500, num_layers: int = 2,
                 num_data: int | None = None):
        super().__init__()
        self.code_dim, self.num_data, self.kl_weight = code_dim, num_data, 1.0
        hidden = [hidden_dim] * num_layers
        self.encoder = mlp([NUM_PIXELS, *hidden, 2 * code_dim], nn.ReLU)
        self.decoder = mlp([code_dim, *hidden, NUM_PIXELS], nn.ReLU)

    def scale(self, xs) -> float:
        return 1.0 if self.num_data is None else self.num_data / xs.shape[0]

    def encode(self, xs) -> tuple[torch.Tensor, torch.Tensor]:
        """loc and scale of q(code | x): shapes (..., code_dim)."""
        return loc_scale(self.encoder(xs))

    def model(self, xs):
        pyro.module("m1", self)
        with pyro.plate("data", xs.shape[0]), poutine.scale(scale=self.scale(xs)):
            loc = xs.new_zeros(xs.shape[0], self.code_dim)
            with poutine.scale(scale=self.kl_weight):
                code = pyro.sample("code", dist.Normal(loc, 1.0).to_event(1))
            pyro.sample("obs", GreyBernoulli(logits=self.decoder(code),
                                             validate_args=False).to_event(1), obs=xs)

    def guide(self, xs):
        with pyro.plate("data", xs.shape[0]), \
                poutine.scale(scale=self.scale(xs) * self.kl_weight):
            pyro.sample("code", dist.Normal(*self.encode(xs)).to_event(1))


def kl_weight(config: M1Config, epoch: int) -> float:
    """The code's weight in epoch ``epoch`` (from 0): 1/warmup_epochs, 2/warmup_epochs,
    ... up to 1."""
    return min(1.0, (epoch + 1) / config.warmup_epochs) if config.warmup_epochs else 1.0


def train_m1(m1: M1, x: torch.Tensor, config: M1Config, seed: int = 0) -> dict:
    """Fit M1 to the images ``x`` (N, 784) by SVI, mini-batch by mini-batch, with the KL
    warm-up and Adam's learning rate decayed once per epoch. Shown in book/ssvae.md.

    Returns the loss of every epoch (the mean negative ELBO per image) and the KL
    weight it was computed with.
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optim = pyro.optim.ExponentialLR({
        "optimizer": torch.optim.Adam, "optim_args": {"lr": config.lr},
        "gamma": lr_decay(config.lr, config.final_lr, config.num_epochs - 1)})
    svi = SVI(m1.model, m1.guide, optim, loss=TraceMeanField_ELBO())
    history, step = {"epoch_losses": [], "kl_weights": []}, 0
    for epoch in progress(range(config.num_epochs), desc="M1"):
        m1.kl_weight = kl_weight(config, epoch)
        losses = []
        for (batch,) in minibatches((x,), config.batch_size, generator):
            loss = svi.step(batch)
            step += 1
            check_finite(loss, "M1", step, epoch + 1)
            losses.append(loss)
        history["epoch_losses"].append(sum(losses) / len(losses) / len(x))
        history["kl_weights"].append(m1.kl_weight)
        optim.step()  # the next epoch's learning rate
    return history
