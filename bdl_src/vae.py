"""Chapter 3: a variational autoencoder (VAE) on Fashion-MNIST.

``VAE`` holds the decoder (the model's network) and the encoder (the guide's network)
and defines ``model(x)`` and ``guide(x)``; with ``num_flows > 0`` the guide pushes the
encoder's Gaussian through conditional affine autoregressive transforms (a normalizing
flow). ``binarize`` gives the binarised-data variant that the literature reports.
``train`` fits it by SVI on mini-batches; ``log_weights`` and ``evaluate`` give the ELBO
and the importance-sampled log-likelihood; the last helpers encode, decode, sample and
interpolate for the chapter's figures. The book's runs (cached) are in
``bdl_src.runs.vae``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.distributions.transforms import ConditionalAffineAutoregressive
from pyro.infer import SVI, TraceMeanField_ELBO
from pyro.nn import ConditionalAutoRegressiveNN
from torch import nn

from bdl_src.data import ImageData, load_images, train_val_split
from bdl_src.nets import GreyBernoulli, mlp
from bdl_src.train import check_finite, lr_decay, minibatches, progress

NUM_PIXELS = 784


@dataclass(frozen=True)
class VAEConfig:
    """Network sizes and SVI settings (the defaults are the book's)."""

    z_dim: int = 16  # latent dimensions
    hidden_dim: int = 512  # units in each hidden layer of the encoder and the decoder
    num_layers: int = 2  # hidden layers in each network
    num_epochs: int = 12  # passes over the training images
    batch_size: int = 128  # images per SVI step
    lr: float = 3e-3  # Adam's learning rate in the first epoch, decayed geometrically
    final_lr: float = 2e-4  # epoch by epoch to this one in the last epoch
    num_monitor: int = 2000  # held-out images whose ELBO is recorded after each epoch
    # None: train on all 60,000 images and hold out the test set; a number n: hold out
    # n training images instead (to choose settings)
    num_val: int | None = None
    num_train: int | None = None  # None: every training image left; n: the first n
    # 0: the mean-field Gaussian guide; n > 0: that Gaussian pushed through n
    # conditional affine autoregressive transforms (an inverse autoregressive flow)
    num_flows: int = 0
    # False: Bernoulli on grey levels; True: pixels drawn 0/1 with their grey level as
    # probability, afresh in every epoch (dynamic binarisation)
    binarize: bool = False
    seed: int = 0


@dataclass(frozen=True)
class EvalConfig:
    """How the final numbers are measured on the held-out images."""

    num_samples: int = 100  # K draws from the guide per image
    num_images: int = 0  # 0: every held-out image; n > 0: a seeded random subset of n


class Encoder(nn.Module):
    """x (..., 784) -> loc, scale (..., z_dim) of the Gaussian q(z | x), and a context
    (..., context_dim) for a flow (empty when ``context_dim`` is 0)."""

    def __init__(self, z_dim: int, hidden_dim: int, num_layers: int,
                 context_dim: int = 0):
        super().__init__()
        self.z_dim = z_dim
        self.net = mlp([NUM_PIXELS] + [hidden_dim] * num_layers
                       + [2 * z_dim + context_dim])

    def forward(self, x):
        out = self.net(x)
        loc, raw_scale = out[..., :self.z_dim], out[..., self.z_dim:2 * self.z_dim]
        return loc, nn.functional.softplus(raw_scale) + 1e-4, out[..., 2 * self.z_dim:]


class Decoder(nn.Module):
    """z (..., z_dim) -> logits (..., 784) of the pixel probabilities."""

    def __init__(self, z_dim: int, hidden_dim: int, num_layers: int):
        super().__init__()
        self.net = mlp([z_dim] + [hidden_dim] * num_layers + [NUM_PIXELS])

    def forward(self, z):
        return self.net(z)


class VAE(nn.Module):
    """A VAE with a Bernoulli likelihood on grey levels.

    Model:  z_n ~ Normal(0, I)                        shape (z_dim,)
            x_n ~ Bernoulli(sigmoid(decoder(z_n)))    shape (784,), pixels in [0, 1]
    Guide:  z_n ~ Normal(encoder(x_n))                one encoder for every image

    ``x`` has shape (batch, 784). With ``num_data`` set, a batch stands for a data set
    of that many images: model and guide scale their log densities by
    ``num_data / batch``, so the ELBO of a mini-batch estimates that of the data set.
    """

    def __init__(self, z_dim: int = 32, hidden_dim: int = 512, num_layers: int = 2,
                 num_data: int | None = None, num_flows: int = 0):
        super().__init__()
        self.z_dim, self.num_data = z_dim, num_data
        context_dim = 2 * z_dim if num_flows else 0
        self.encoder = Encoder(z_dim, hidden_dim, num_layers, context_dim)
        self.decoder = Decoder(z_dim, hidden_dim, num_layers)
        # Each flow step: z -> loc(z_<i, h) + scale(z_<i, h) * z_i, coordinate by
        # coordinate (i in a new random order each step), h the encoder's context.
        self.flows = nn.ModuleList(
            ConditionalAffineAutoregressive(ConditionalAutoRegressiveNN(
                z_dim, context_dim, [4 * z_dim]))
            for _ in range(num_flows))

    def scale(self, x) -> float:
        return 1.0 if self.num_data is None else self.num_data / x.shape[0]

    def model(self, x):
        pyro.module("decoder", self.decoder)
        # Images are independent given the decoder (the plate); the scale makes the
        # mini-batch's log density an estimate for the whole training set.
        with pyro.plate("data", x.shape[0]), poutine.scale(scale=self.scale(x)):
            loc = x.new_zeros(x.shape[0], self.z_dim)
            # to_event(1): the z_dim coordinates are one draw, the plate is the batch.
            z = pyro.sample("z", dist.Normal(loc, torch.ones_like(loc)).to_event(1))
            logits = self.decoder(z)
            # A Bernoulli with a faster log_prob; grey levels are not in the support
            # {0, 1}: skip that check.
            pyro.sample("obs", GreyBernoulli(logits=logits, validate_args=False)
                        .to_event(1), obs=x)

    def guide(self, x):
        pyro.module("encoder", self.encoder)
        pyro.module("flows", self.flows)
        with pyro.plate("data", x.shape[0]), poutine.scale(scale=self.scale(x)):
            loc, scale, context = self.encoder(x)
            q = dist.Normal(loc, scale).to_event(1)
            if len(self.flows):  # q(z | x): the Gaussian pushed through the flow
                q = dist.TransformedDistribution(
                    q, [flow.condition(context) for flow in self.flows])
            pyro.sample("z", q)


def build(config: VAEConfig, num_data: int | None = None) -> VAE:
    return VAE(config.z_dim, config.hidden_dim, config.num_layers, num_data=num_data,
               num_flows=config.num_flows)


def binarize(images: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Pixels drawn 0 or 1 with their grey level as probability (seeded): the fixed
    binarisation of a test set."""
    gen = torch.Generator(device=images.device).manual_seed(seed)
    return torch.bernoulli(images, generator=gen)


@torch.no_grad()
def log_weights(vae: VAE, x: torch.Tensor, num_samples: int) -> torch.Tensor:
    """log w_k = log p(x, z_k) - log q(z_k | x) for K = ``num_samples`` draws z_k ~ q.

    Runs the very ``guide`` and ``model`` (unscaled), with the K draws side by side in
    an outer plate. Returns shape (K, batch): the mean over k estimates each image's
    ELBO, the log-mean-exp is the importance-sampled estimate of log p(x).
    """
    num_data, vae.num_data = vae.num_data, None
    try:
        with pyro.plate("particles", num_samples, dim=-2):
            guide_tr = poutine.trace(vae.guide).get_trace(x)
            replayed = poutine.replay(vae.model, trace=guide_tr)
            model_tr = poutine.trace(replayed).get_trace(x)
    finally:
        vae.num_data = num_data
    model_tr.compute_log_prob()
    guide_tr.compute_log_prob()
    return (model_tr.nodes["obs"]["log_prob"] + model_tr.nodes["z"]["log_prob"]
            - guide_tr.nodes["z"]["log_prob"])


def evaluate(vae: VAE, images: torch.Tensor, num_samples: int = 1,
             batch_size: int | None = None, seed: int | None = 0,
             per_image: bool = False, max_draws: int = 2048) -> dict:
    """The ELBO and the importance-sampled log-likelihood, in nats per image.

    Both come from the same K = ``num_samples`` draws per image: ``elbo`` averages
    log w_k, ``log_likelihood`` is log(1/K sum_k w_k), never below it. The decoder
    runs on chunks of about ``max_draws`` draws (fast on a CPU, small in memory):
    ``batch_size`` images at a time (by default as many as that allows) and, when K
    alone exceeds it, the K draws of an image in parts. ``seed=None`` draws from the
    running random state instead of reseeding it. With ``per_image`` the result also
    holds both numbers for every image (``elbo_per_image``, ...).
    """
    if seed is not None:
        pyro.set_rng_seed(seed)
    batch_size = batch_size or max(1, max_draws // num_samples)
    # the K draws in nearly equal parts of at most max_draws each
    num_parts = math.ceil(num_samples / max_draws)
    parts = [len(p) for p in torch.arange(num_samples).chunk(num_parts)]
    elbo, ll = [], []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size]
        lw = torch.cat([log_weights(vae, x, k) for k in parts])  # (K, batch)
        elbo.append(lw.mean(0))
        ll.append(lw.logsumexp(0) - math.log(num_samples))
    elbo, ll = torch.cat(elbo), torch.cat(ll)
    out = {"elbo": elbo.mean().item(), "log_likelihood": ll.mean().item()}
    if per_image:
        out.update(elbo_per_image=elbo.tolist(), log_likelihood_per_image=ll.tolist())
    return out


def load_data(config: VAEConfig) -> tuple[ImageData, ImageData]:
    """The training images and the held-out ones (test set, or validation split)."""
    train_data = load_images("fashion", train=True)
    if config.num_val:
        train_data, heldout = train_val_split(train_data, config.num_val, config.seed)
    else:
        heldout = load_images("fashion", train=False)
    if config.num_train:
        train_data = train_data.subset(slice(0, config.num_train))
    return train_data, heldout


def train(vae: VAE, x: torch.Tensor, held: torch.Tensor, config: VAEConfig) -> dict:
    """Fit the VAE to the images ``x`` (N, 784) by SVI on mini-batches. Shown in
    book/vae.md.

    Returns the ELBO in nats per image, epoch by epoch: ``train_elbo`` the mean over the
    epoch's steps, ``heldout_elbo`` that of the first ``config.num_monitor`` held-out
    images ``held`` (M, 784) after the epoch (to watch, never to choose anything).
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)  # the order of the batches
    gamma = lr_decay(config.lr, config.final_lr, config.num_epochs - 1)  # per epoch
    adam = {"lr": config.lr, "fused": True}  # fused: one kernel per update
    optim = pyro.optim.ExponentialLR({"optimizer": torch.optim.Adam,
                                      "optim_args": adam, "gamma": gamma})
    svi = SVI(vae.model, vae.guide, optim, loss=TraceMeanField_ELBO())
    binary_gen = torch.Generator(x.device).manual_seed(config.seed + 1)
    train_elbo, heldout_elbo = [], []
    for epoch in progress(range(config.num_epochs), desc="VAE"):
        losses = []
        for (batch,) in minibatches((x,), config.batch_size, generator):
            if config.binarize:  # a fresh 0/1 image at every visit
                batch = torch.bernoulli(batch, generator=binary_gen)
            loss = svi.step(batch)  # an estimate of the negative ELBO of all N images
            check_finite(loss, "VAE", len(losses) + 1, epoch + 1)
            losses.append(loss)
        train_elbo.append(-(sum(losses) / len(losses)) / len(x))
        optim.step()  # the next epoch's learning rate
        monitor = evaluate(vae, held[:config.num_monitor], seed=None)
        heldout_elbo.append(monitor["elbo"])
    return {"train_elbo": train_elbo, "heldout_elbo": heldout_elbo}


# What the trained VAE does: encode, decode, sample, interpolate (no gradients).


@torch.no_grad()
def encode(vae: VAE, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """loc and scale of the Gaussian q(z | x) (before any flow) for each image: shapes
    (N, z_dim)."""
    return vae.encoder(images)[:2]


@torch.no_grad()
def decode(vae: VAE, z: torch.Tensor) -> torch.Tensor:
    """Pixel probabilities sigmoid(decoder(z)), the mean of p(x | z): shape (N, 784)."""
    return torch.sigmoid(vae.decoder(z))


def reconstruct(vae: VAE, images: torch.Tensor) -> torch.Tensor:
    """Decode each image's posterior mean: shape (N, 784)."""
    return decode(vae, encode(vae, images)[0])


@torch.no_grad()
def sample_prior(vae: VAE, num_samples: int, seed: int = 0,
                 binary: bool = False) -> torch.Tensor:
    """New images: z ~ Normal(0, I), decoded to pixel probabilities (num_samples, 784).

    With ``binary=True`` every pixel is then drawn from its Bernoulli, which is what
    the model, read literally, generates.
    """
    gen = torch.Generator().manual_seed(seed)
    probs = decode(vae, torch.randn(num_samples, vae.z_dim, generator=gen))
    return torch.bernoulli(probs, generator=gen) if binary else probs


def interpolate(vae: VAE, start: torch.Tensor, end: torch.Tensor,
                num_steps: int = 8) -> torch.Tensor:
    """Decode evenly spaced points on the segment between the posterior means of two
    images (784,): shape (num_steps, 784), from one reconstruction to the other."""
    z = encode(vae, torch.stack([start, end]))[0]
    t = torch.linspace(0, 1, num_steps)[:, None]
    return decode(vae, (1 - t) * z[0] + t * z[1])


def pca_2d(z: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Points (N, d) projected on their two principal axes, (N, 2), and the share of
    the total variance these two axes keep."""
    centred = z - z.mean(0)
    _, s, v = torch.linalg.svd(centred, full_matrices=False)
    return centred @ v[:2].T, (s[:2].pow(2).sum() / s.pow(2).sum()).item()


def active_units(loc: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dimensions whose posterior mean (N, z_dim) varies across images by more
    than ``threshold`` in variance; the decoder ignores the others."""
    return int((loc.var(0) > threshold).sum())


def grey_level_entropy(images: torch.Tensor) -> float:
    """The lowest loss a Bernoulli likelihood can reach on grey levels: the sum over
    pixels of the binary entropy H(x_i), reached when each pixel's probability equals
    its grey level. Mean over images, in nats."""
    x = images.double()
    return -(torch.xlogy(x, x) + torch.xlogy(1 - x, 1 - x)).sum(-1).mean().item()
