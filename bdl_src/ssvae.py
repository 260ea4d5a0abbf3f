"""Chapter 4: the semi-supervised VAE (M2, Kingma et al. 2014) on MNIST with few labels.

Kingma et al.'s best model stacks two VAEs, and so does this module:

* ``M1``, a plain VAE, learns a ``code`` of every training image without any label;
* ``SSVAE``, the M2 model, explains each code by a digit ``y`` and a style ``z``. Its
  ``model`` and ``guide`` take the same arguments ``(xs, ys=None)``: with ``ys`` the
  digit is observed; without it the guide's ``y`` is enumerated, so the ELBO sums
  exactly over the ten digits. ``model_classify``/``guide_classify`` add Kingma's extra
  classification loss on the labelled images.

``fit_m1`` and ``fit`` train them (or load them from the checkpoint cache);
``fit_baseline`` trains the same classifier on the labelled images alone; the remaining
helpers classify, encode styles and write digits for the chapter's figures.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from pyro.infer import (
    Trace_ELBO,
    TraceEnum_ELBO,
    TraceMeanField_ELBO,
    config_enumerate,
)
from torch import nn
from tqdm import tqdm

from bdl_src import cache, distributed, train, vae
from bdl_src.data import ImageData, load_images, train_val_split

NUM_PIXELS, NUM_CLASSES = 784, 10


# --------------------------------------------------------------------------------------
# Configuration


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


@dataclass(frozen=True)
class SSVAEConfig:
    """Data, network sizes and training settings of M2 (the defaults are the book's)."""

    num_labels: int = 3000  # labels kept: num_labels / 10 of each digit, at random
    z_dim: int = 16  # style dimensions
    hidden_dim: int = 500  # units in the hidden layer of each of M2's three networks
    alpha: float = 0.01  # weight of the classification loss per labelled image, as a
    #                      multiple of the number of training images (Kingma: 0.1)
    num_epochs: int = 12  # passes over the unlabelled images
    batch_size: int = 200  # unlabelled images per step
    labelled_batch_size: int = 50  # labelled images per step (the labelled set cycles)
    lr: float = 3e-3  # Adam's learning rate at the first step ...
    final_lr: float = 3e-4  # ... decayed geometrically, step by step, to this one
    m1: M1Config = field(default_factory=M1Config)  # the code M2 models
    num_val: int = 5000  # training images held out for choosing settings (never test)
    num_train: int = 0  # 0: every remaining training image; n > 0: the first n (tests)
    seed: int = 0


# --------------------------------------------------------------------------------------
# Networks


def loc_scale(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Split a network's output into the loc and the scale of a Normal. The scale never
    falls below 1e-3, so no log density can blow up to infinity."""
    loc, raw_scale = out.chunk(2, dim=-1)
    return loc, nn.functional.softplus(raw_scale) + 1e-3


class Classifier(nn.Module):
    """code (..., code_dim) -> logits (..., 10) of q(y | code)."""

    def __init__(self, code_dim: int, hidden_dim: int):
        super().__init__()
        self.net = vae.mlp([code_dim, hidden_dim, NUM_CLASSES], nn.ReLU)

    def forward(self, code):
        return self.net(code)


class DigitConditioned(nn.Module):
    """(x, y) -> loc, scale (..., out_dim) of a Normal given an input and a digit: M2's
    style encoder q(z | code, y) (x = code) and its decoder p(code | z, y) (x = z).

    The first layer is W_x x + W_y[y]: x passes through W_x once per image, however
    many digits ``y`` holds (ten when enumerated); broadcasting does the rest.
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int):
        super().__init__()
        self.fc_x = nn.Linear(in_dim, hidden_dim)
        self.fc_y = nn.Embedding(NUM_CLASSES, hidden_dim)
        self.out = nn.Linear(hidden_dim, 2 * out_dim)

    def forward(self, x, y):
        return loc_scale(self.out(torch.relu(self.fc_x(x) + self.fc_y(y))))


class _BernoulliLogProb(torch.autograd.Function):
    """x * l - softplus(l), the log-probability of grey level x under logit l, with its
    gradient x - sigmoid(l) written out: three times faster on a CPU than
    ``binary_cross_entropy_with_logits``, whose log1p is not vectorised there."""

    @staticmethod
    def forward(ctx, logits, value):
        ctx.save_for_backward(logits, value)
        softplus = torch.exp(-logits.abs()).add_(1).log_().add_(logits.clamp(min=0))
        return (value * logits).sub_(softplus)

    @staticmethod
    def backward(ctx, grad):
        logits, value = ctx.saved_tensors
        return grad * (value - torch.sigmoid(logits)), None


class GreyBernoulli(dist.Bernoulli):
    """Bernoulli pixels with a faster ``log_prob``. Build it with
    ``validate_args=False`` so that grey levels in [0, 1], not only 0 and 1, may be
    observed."""

    def log_prob(self, value):
        return _BernoulliLogProb.apply(self.logits, value)


# --------------------------------------------------------------------------------------
# The models and the guides


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
        self.encoder = vae.mlp([NUM_PIXELS] + [hidden_dim] * num_layers + [2 * code_dim],
                               nn.ReLU)
        self.decoder = vae.mlp([code_dim] + [hidden_dim] * num_layers + [NUM_PIXELS],
                               nn.ReLU)

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


class SSVAE(nn.Module):
    """Kingma et al.'s M2 on the code of a trained, frozen M1 (their "M1+M2").

    Model:  y_n ~ Categorical(1/10, ..., 1/10)                 digit, observed or not
            z_n ~ Normal(0, I)                                 style (z_dim,)
            code_n ~ Normal(decoder(z_n, y_n))                 (code_dim,)
            x_n ~ Bernoulli(sigmoid(m1.decoder(code_n)))       (784,) pixels
    Guide:  code_n ~ Normal(m1.encoder(x_n))
            y_n ~ Categorical(softmax(classifier(code_n)))     only where y_n is missing
            z_n ~ Normal(encoder(code_n, y_n))

    ``xs`` has shape (batch, 784) and ``ys`` (batch,) digits, or None. With
    ``num_labelled``/``num_unlabelled`` set, a batch stands for the whole labelled or
    unlabelled set: its log densities are scaled by ``num_... / batch``.
    """

    def __init__(self, m1: M1, z_dim: int = 16, hidden_dim: int = 500,
                 num_labelled: int | None = None, num_unlabelled: int | None = None):
        super().__init__()
        self.m1 = m1.requires_grad_(False)  # trained first; fixed while M2 learns
        self.z_dim = z_dim
        self.num_labelled, self.num_unlabelled = num_labelled, num_unlabelled
        self.classifier = Classifier(m1.code_dim, hidden_dim)
        self.encoder = DigitConditioned(m1.code_dim, z_dim, hidden_dim)  # q(z | code, y)
        self.decoder = DigitConditioned(z_dim, m1.code_dim, hidden_dim)  # p(code | z, y)

    def scale(self, xs, ys) -> float:
        num_data = self.num_unlabelled if ys is None else self.num_labelled
        return 1.0 if num_data is None else num_data / xs.shape[0]

    def model(self, xs, ys=None):
        pyro.module("decoder", self.decoder)  # M1 is not registered: it stays fixed
        with pyro.plate("data", xs.shape[0]), poutine.scale(scale=self.scale(xs, ys)):
            # Observed when ys is given; otherwise replayed from the guide's
            # enumeration: y has shape (10, 1), so the next lines run for all ten
            # digits at once.
            ys = pyro.sample("y", dist.Categorical(logits=xs.new_zeros(NUM_CLASSES)),
                             obs=ys)
            loc = xs.new_zeros(xs.shape[0], self.z_dim)
            zs = pyro.sample("z", dist.Normal(loc, 1.0).to_event(1))
            code = pyro.sample("code", dist.Normal(*self.decoder(zs, ys)).to_event(1))
            pyro.sample("obs", GreyBernoulli(logits=self.m1.decoder(code),
                                             validate_args=False).to_event(1), obs=xs)

    @config_enumerate  # TraceEnum_ELBO sums over the ten values of y, no sampling
    def guide(self, xs, ys=None):
        pyro.module("classifier", self.classifier)
        pyro.module("encoder", self.encoder)
        with pyro.plate("data", xs.shape[0]), poutine.scale(scale=self.scale(xs, ys)):
            code = pyro.sample("code", dist.Normal(*self.m1.encode(xs)).to_event(1))
            if ys is None:
                ys = pyro.sample("y", dist.Categorical(logits=self.classifier(code)))
            pyro.sample("z", dist.Normal(*self.encoder(code, ys)).to_event(1))

    def model_classify(self, xs, ys, alpha: float = 1.0):
        """The classification loss as a model: ``ys`` observed under q(y | x), weighted
        by ``alpha`` per labelled image on top of the data-set scaling."""
        pyro.module("classifier", self.classifier)
        with pyro.plate("data", xs.shape[0]), \
                poutine.scale(scale=alpha * self.scale(xs, ys)):
            code = self.m1.encode(xs)[0]
            pyro.sample("y_aux", dist.Categorical(logits=self.classifier(code)), obs=ys)

    def guide_classify(self, xs, ys, alpha: float = 1.0):
        """Nothing to infer: the classification "model" has no latent variable."""


class SSVAELoss:
    """The objective of one step, a differentiable scalar that ``SVI`` minimises.

    ``loss(model, guide, xu, xl, yl)``: the negative ELBO of the unlabelled batch ``xu``
    with y summed out, plus the negative ELBO of the labelled batch ``(xl, yl)``, plus
    ``alpha`` times the classification loss of the labelled batch.
    """

    def __init__(self, ssvae: SSVAE, alpha: float):
        self.ssvae, self.alpha = ssvae, alpha
        # max_plate_nesting=1: the data plate is dim -1, so enumeration takes dim -2.
        self.enum_elbo = TraceEnum_ELBO(max_plate_nesting=1)
        self.elbo = Trace_ELBO(max_plate_nesting=1)

    def __call__(self, model, guide, xu, xl, yl):
        unlabelled = self.enum_elbo.differentiable_loss(model, guide, xu)
        labelled = self.elbo.differentiable_loss(model, guide, xl, yl)
        classify = self.elbo.differentiable_loss(
            self.ssvae.model_classify, self.ssvae.guide_classify, xl, yl, self.alpha)
        return unlabelled + labelled + classify


# --------------------------------------------------------------------------------------
# Data


def keep_labels(labels: torch.Tensor, num_labels: int, seed: int = 0) -> torch.Tensor:
    """Indices of the images whose label is kept: ``num_labels / 10`` of each digit,
    drawn at random (seeded); every other label is removed."""
    if num_labels % NUM_CLASSES:
        raise ValueError(f"num_labels must be a multiple of 10, got {num_labels}")
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for digit in range(NUM_CLASSES):
        idx = (labels == digit).nonzero().squeeze(1)
        keep.append(idx[torch.randperm(len(idx), generator=gen)[:num_labels // 10]])
    return torch.cat(keep).sort().values


@dataclass(frozen=True)
class SplitData:
    """The training images split by whether their label was kept, plus held-out sets.

    ``unlabelled.labels`` are kept only to measure how well the model infers them.
    """

    labelled: ImageData
    unlabelled: ImageData
    val: ImageData
    test: ImageData

    def train_images(self) -> torch.Tensor:
        return torch.cat([self.labelled.images, self.unlabelled.images])


def split_data(num_labels: int, num_val: int = 5000, num_train: int = 0, seed: int = 0,
               device=None) -> SplitData:
    """Hold out ``num_val`` training images, then keep ``num_labels`` labels of the rest
    (of the first ``num_train`` if > 0)."""
    train_data, val = train_val_split(load_images("mnist", train=True), num_val,
                                      seed=seed)
    if num_train:
        train_data = train_data.subset(slice(0, num_train))
    keep = keep_labels(train_data.labels, num_labels, seed=seed)
    mask = torch.ones(len(train_data), dtype=torch.bool)
    mask[keep] = False
    parts = [train_data.subset(keep), train_data.subset(mask), val,
             load_images("mnist", train=False)]
    if device is not None:
        parts = [ImageData(p.images.to(device), p.labels.to(device)) for p in parts]
    return SplitData(*parts)


def _split(config: SSVAEConfig, device=None) -> SplitData:
    return split_data(config.num_labels, config.num_val, config.num_train, config.seed,
                      device)


# --------------------------------------------------------------------------------------
# Training


def fit_m1(config: M1Config = M1Config(), num_val: int = 5000, num_train: int = 0,
           seed: int = 0, refresh: bool = False) -> tuple[M1, dict]:
    """Train M1 on every training image, labels unused (or load it from the cache).

    One M1 serves every number of labels. Returns it (on the CPU, in eval mode) and a
    dict with the loss per epoch (negative ELBO per image) and the training time.
    """
    device = train.default_device()

    def run():
        x = split_data(0, num_val, num_train, seed, device).train_images()
        pyro.set_rng_seed(seed)  # the networks' initial weights
        m1 = M1(config.code_dim, config.hidden_dim, config.num_layers,
                num_data=len(x)).to(device)
        gamma = (config.final_lr / config.lr) ** (1 / max(config.num_epochs - 1, 1))
        optim = pyro.optim.ExponentialLR({"optimizer": torch.optim.Adam,
                                          "optim_args": {"lr": config.lr},
                                          "gamma": gamma})

        def warm_up(epoch: int, log=None):
            m1.kl_weight = min(1.0, (epoch + 1) / config.warmup_epochs) \
                if config.warmup_epochs else 1.0

        def end_of_epoch(epoch, log):
            optim.step()  # the next epoch's learning rate
            warm_up(epoch + 1)

        warm_up(0)
        log = train.run_svi(m1.model, m1.guide, (x,), optim=optim,
                            loss=TraceMeanField_ELBO(), num_epochs=config.num_epochs,
                            batch_size=config.batch_size, seed=seed, desc="M1",
                            epoch_callback=end_of_epoch)
        meta = {"epoch_losses": [v / len(x) for v in log.epoch_losses],
                "kl_weights": [min(1.0, (e + 1) / config.warmup_epochs)
                               if config.warmup_epochs else 1.0
                               for e in range(config.num_epochs)],
                "seconds": log.seconds, "examples_seen": config.num_epochs * len(x)}
        return {k: v.cpu() for k, v in m1.state_dict().items()}, meta

    key = {"m1": asdict(config), "data": {"num_val": num_val, "num_train": num_train,
                                          "seed": seed}}
    state, meta = cache.fit_or_load("ssvae-m1", key, run, refresh=refresh,
                                    code=[sys.modules[__name__], vae, train])
    m1 = M1(config.code_dim, config.hidden_dim, config.num_layers)
    m1.load_state_dict(state)
    return m1.eval(), meta


@torch.no_grad()
def accuracy(ssvae: SSVAE, data: ImageData, batch_size: int = 5000) -> float:
    """Share of images whose most probable digit under q(y | x) is the true one."""
    correct = 0
    for start in range(0, len(data), batch_size):
        probs = classify(ssvae, data.images[start:start + batch_size])
        correct += (probs.argmax(-1) == data.labels[start:start + batch_size]).sum()
    return correct.item() / len(data)


def _labelled_batches(num: int, batch_size: int, generator: torch.Generator):
    """Endless index batches over ``num`` labelled images, reshuffled on every pass."""
    while True:
        order = torch.randperm(num, generator=generator)
        for start in range(0, num - batch_size + 1, batch_size):
            yield order[start:start + batch_size]


def train_ssvae(ssvae: SSVAE, data: SplitData, config: SSVAEConfig,
                desc: str = "SS-VAE") -> dict:
    """Fit M2 by SVI: each step pairs an unlabelled batch with a labelled one.

    Seeds every generator, shows a progress bar only on a terminal, records the loss of
    every step (per training image) and the accuracy of q(y | x) on the validation and
    test images after every epoch, and raises ``FloatingPointError`` as soon as a loss
    is NaN or infinite.
    """
    pyro.clear_param_store()
    pyro.set_rng_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    xu, xl, yl = data.unlabelled.images, data.labelled.images, data.labelled.labels
    num_data = len(xu) + len(xl)
    steps_per_epoch = train.num_batches(len(xu), config.batch_size)
    num_steps = config.num_epochs * steps_per_epoch
    # Adam, its learning rate decayed geometrically at every step (optim.step()).
    gamma = (config.final_lr / config.lr) ** (1 / max(num_steps - 1, 1))
    optim = pyro.optim.ExponentialLR({"optimizer": torch.optim.Adam,
                                      "optim_args": {"lr": config.lr}, "gamma": gamma})
    # SVI's step, or its data-parallel twin under torchrun (see bdl_src.train).
    svi_step = train.svi_step(ssvae.model, ssvae.guide, optim,
                              SSVAELoss(ssvae, alpha=config.alpha * num_data), config.seed)
    labelled = _labelled_batches(len(xl), min(config.labelled_batch_size, len(xl)), gen)
    log = {"losses": [], "epoch_val_accuracy": [], "epoch_test_accuracy": [],
           "epoch_seconds": [], "steps_per_epoch": steps_per_epoch}
    start = time.perf_counter()
    with tqdm(total=num_steps, desc=desc, disable=not train.show_progress(),
              dynamic_ncols=True) as bar:
        for epoch in range(config.num_epochs):
            order = torch.randperm(len(xu), generator=gen).to(xu.device)
            for first in range(0, len(xu), config.batch_size):
                u = order[first:first + config.batch_size]
                if len(u) < distributed.world_size():
                    continue  # too few to share between the processes
                # Distributed: each process takes its share of both batches.
                u, idx = distributed.shard(u), distributed.shard(next(labelled))
                idx = idx.to(xl.device)
                step = len(log["losses"]) + 1
                try:
                    value = svi_step(xu[u], xl[idx], yl[idx]) / num_data
                except ValueError as err:  # Pyro's check of a distribution's arguments
                    if "invalid values" not in str(err):
                        raise
                    train.check_finite(math.nan, desc, step, epoch + 1, err)
                optim.step()
                train.check_finite(value, desc, step, epoch + 1)
                log["losses"].append(value)
                bar.update()
                if len(log["losses"]) % 25 == 0:
                    bar.set_postfix(loss=f"{value:.4g}")
            log["epoch_seconds"].append(time.perf_counter() - start)
            log["epoch_val_accuracy"].append(accuracy(ssvae, data.val))
            log["epoch_test_accuracy"].append(accuracy(ssvae, data.test))
    return log


def build(config: SSVAEConfig, m1: M1, num_labelled: int | None = None,
          num_unlabelled: int | None = None) -> SSVAE:
    return SSVAE(m1, config.z_dim, config.hidden_dim, num_labelled=num_labelled,
                 num_unlabelled=num_unlabelled)


def fit(config: SSVAEConfig = SSVAEConfig(),
        refresh: bool = False) -> tuple[SSVAE, dict]:
    """Train M2 on the code of M1 (both from the cache when they were trained before).

    Returns the trained model (on the CPU, in eval mode) and a dict with the loss of
    every step, the validation and test accuracy of q(y | x) after every epoch, the
    final ``test_accuracy``, the accuracy on the training images whose label was removed
    (``unlabelled_accuracy``), and the training times (``m1_seconds`` is M1's, shared
    by every number of labels).
    """
    device = train.default_device()
    m1, m1_meta = fit_m1(config.m1, config.num_val, config.num_train, config.seed)

    def run():
        data = _split(config, device)
        pyro.set_rng_seed(config.seed)  # the networks' initial weights
        ssvae = build(config, m1, len(data.labelled), len(data.unlabelled)).to(device)
        log = train_ssvae(ssvae, data, config,
                          desc=f"SS-VAE, {config.num_labels} labels")
        meta = {**log, "seconds": log["epoch_seconds"][-1],
                "test_accuracy": log["epoch_test_accuracy"][-1],
                "val_accuracy": log["epoch_val_accuracy"][-1],
                "unlabelled_accuracy": accuracy(ssvae, data.unlabelled),
                "examples_seen": config.num_epochs * len(data.unlabelled)
                + len(log["losses"]) * min(config.labelled_batch_size,
                                           len(data.labelled))}
        state = {k: v.cpu() for k, v in ssvae.state_dict().items()
                 if not k.startswith("m1.")}  # M1 has its own cache entry
        return state, meta

    state, meta = cache.fit_or_load("ssvae", config, run, refresh=refresh,
                                    code=[sys.modules[__name__], vae, train])
    ssvae = build(config, m1)
    ssvae.load_state_dict(state, strict=False)
    return ssvae.eval(), {**meta, "m1_seconds": m1_meta["seconds"],
                          "m1_epoch_losses": m1_meta["epoch_losses"]}


# --------------------------------------------------------------------------------------
# Baselines: the same classifier trained on the labelled images alone


@dataclass(frozen=True)
class BaselineConfig:
    """Plain supervised training of the SS-VAE's classifier on the labelled images.

    ``features="pixels"``: the whole network x -> M1's encoder architecture -> the
    classifier, trained from scratch (what the labelled images alone can do);
    ``features="m1"``: only the classifier, on the code of the trained, frozen M1 (what
    M1's unsupervised code adds, before M2 sees the unlabelled images).
    """

    num_labels: int = 3000
    features: str = "pixels"  # "pixels" or "m1"
    num_steps: int = 2000  # Adam steps on mini-batches of labelled images
    batch_size: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-4
    eval_every: int = 50  # steps between validation checks; the best check is kept
    m1: M1Config = field(default_factory=M1Config)
    hidden_dim: int = 500  # the classifier's hidden layer, as in SSVAEConfig
    num_val: int = 5000
    num_train: int = 0
    seed: int = 0


class CodeClassifier(nn.Module):
    """x -> the mean of q(code | x) under an M1-shaped encoder -> Classifier logits."""

    def __init__(self, m1: M1, hidden_dim: int):
        super().__init__()
        self.m1 = m1
        self.classifier = Classifier(m1.code_dim, hidden_dim)

    def forward(self, xs):
        return self.classifier(self.m1.encode(xs)[0])


def train_baseline(net: nn.Module, x: torch.Tensor, y: torch.Tensor, val: ImageData,
                   config: BaselineConfig, desc: str = "labelled only") -> dict:
    """Cross-entropy training of ``net`` on ``(x, y)`` with early stopping: the weights
    with the best accuracy on ``val`` (inputs as ``x``, labels) are kept."""
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    optim = torch.optim.AdamW(net.parameters(), lr=config.lr,
                              weight_decay=config.weight_decay)
    batches = _labelled_batches(len(x), min(config.batch_size, len(x)), gen)
    best, log = None, {"steps": [], "val_accuracy": []}

    @torch.no_grad()
    def val_accuracy():
        return (net(val.images).argmax(-1) == val.labels).float().mean().item()

    for step in tqdm(range(1, config.num_steps + 1), desc=desc,
                     disable=not train.show_progress(), dynamic_ncols=True):
        idx = next(batches).to(x.device)
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        train.check_finite(loss.item(), desc, step, 1)
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % config.eval_every == 0:
            log["steps"].append(step)
            log["val_accuracy"].append(val_accuracy())
            if best is None or log["val_accuracy"][-1] > best[0]:
                best = (log["val_accuracy"][-1], step,
                        {k: v.clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[2])
    log["best_step"] = best[1]
    return log


def fit_baseline(config: BaselineConfig = BaselineConfig(),
                 refresh: bool = False) -> tuple[CodeClassifier, dict]:
    """Train a labelled-only classifier (or load it from the cache) and measure it.

    Returns the whole classifier x -> logits (on the CPU, in eval mode) and a dict with
    the validation accuracy during training, the step kept and the ``test_accuracy``.
    Under torchrun every process trains its own copy on all the labelled images (a few
    seconds of plain PyTorch: not worth sharing); rank 0's is cached.
    """
    if config.features not in ("pixels", "m1"):
        raise ValueError(f"features must be 'pixels' or 'm1', got {config.features!r}")
    device = train.default_device()
    m1_cfg = config.m1
    if config.features == "m1":
        m1, _ = fit_m1(m1_cfg, config.num_val, config.num_train, config.seed)
    else:
        m1 = M1(m1_cfg.code_dim, m1_cfg.hidden_dim, m1_cfg.num_layers)

    def run():
        data = split_data(config.num_labels, config.num_val, config.num_train,
                          config.seed, device)
        torch.manual_seed(config.seed)
        net = CodeClassifier(m1, config.hidden_dim).to(device)
        x, val = data.labelled.images, data.val
        start = time.perf_counter()
        if config.features == "m1":  # M1 is fixed: encode once, train the classifier
            def code(d: ImageData) -> ImageData:
                with torch.no_grad():
                    return ImageData(net.m1.encode(d.images)[0], d.labels)
            x, val = code(data.labelled).images, code(val)
            log = train_baseline(net.classifier, x, data.labelled.labels, val, config)
        else:
            log = train_baseline(net, x, data.labelled.labels, val, config)
        with torch.no_grad():
            correct = net(data.test.images).argmax(-1) == data.test.labels
        meta = {**log, "seconds": time.perf_counter() - start,
                "examples_seen": config.num_steps * min(config.batch_size, len(x)),
                "val_accuracy": max(log["val_accuracy"]),
                "test_accuracy": correct.float().mean().item()}
        return {k: v.cpu() for k, v in net.state_dict().items()}, meta

    state, meta = cache.fit_or_load("ssvae-baseline", config, run, refresh=refresh,
                                    code=[sys.modules[__name__], vae, train])
    net = CodeClassifier(M1(m1_cfg.code_dim, m1_cfg.hidden_dim, m1_cfg.num_layers),
                         config.hidden_dim)
    net.load_state_dict(state)
    return net.eval(), meta


# --------------------------------------------------------------------------------------
# What the trained model does: classify, encode a style, write digits


@torch.no_grad()
def classify(ssvae: SSVAE, images: torch.Tensor) -> torch.Tensor:
    """q(y | x) for each image, taking the mean code of q(code | x): (N, 10)."""
    return ssvae.classifier(ssvae.m1.encode(images)[0]).softmax(-1)


@torch.no_grad()
def encode_style(ssvae: SSVAE, images: torch.Tensor,
                 labels: torch.Tensor | None = None) -> torch.Tensor:
    """The style of each image: the mean of q(z | code, y) at the mean code, (N, z_dim).
    Without ``labels`` each image's digit is the one q(y | x) finds most probable."""
    if labels is None:
        labels = classify(ssvae, images).argmax(-1)
    return ssvae.encoder(ssvae.m1.encode(images)[0], labels)[0]


@torch.no_grad()
def write_digits(ssvae: SSVAE, z: torch.Tensor) -> torch.Tensor:
    """Every digit in every style: the styles ``z`` (R, z_dim) and the digits 0-9 pass
    through both decoders (taking the mean code); pixel probabilities (R, 10, 784)."""
    digits = torch.arange(NUM_CLASSES, device=z.device)
    code = ssvae.decoder(z[:, None, :], digits)[0]
    return torch.sigmoid(ssvae.m1.decoder(code))


@torch.no_grad()
def style_grid(ssvae: SSVAE, images: torch.Tensor,
               labels: torch.Tensor | None = None) -> torch.Tensor:
    """Rows: the style encoded from each image; columns: the digits 0-9. (R, 10, 784)"""
    return write_digits(ssvae, encode_style(ssvae, images, labels))


@torch.no_grad()
def sample_digits(ssvae: SSVAE, num_styles: int, seed: int = 0) -> torch.Tensor:
    """New images: ``num_styles`` styles z ~ Normal(0, I), each written as every digit,
    shape (num_styles, 10, 784)."""
    gen = torch.Generator().manual_seed(seed)
    return write_digits(ssvae, torch.randn(num_styles, ssvae.z_dim, generator=gen))


def accuracy_by_time(meta: dict) -> list[tuple[float, float]]:
    """(seconds of training so far, test accuracy of q(y | x)) after every epoch of M2,
    the clock starting with M1's training: what one run from scratch costs."""
    return [(meta["m1_seconds"] + seconds, acc)
            for seconds, acc in zip(meta["epoch_seconds"], meta["epoch_test_accuracy"])]


def accuracy_at(meta: dict, seconds: float) -> tuple[float, float, int]:
    """Where training stood after ``seconds`` (M1's time included): ``(time, test
    accuracy, epochs of M2)`` at the end of the last epoch finished by then, or of the
    first epoch if even that one finished later."""
    timeline = accuracy_by_time(meta)
    done = [i for i, (t, _) in enumerate(timeline) if t <= seconds]
    i = done[-1] if done else 0
    return (*timeline[i], i + 1)


# --------------------------------------------------------------------------------------
# The chapter's runs

# Numbers of labels the chapter compares: with 1000 as well, training all of them takes
# about 5.5 minutes on two CPU cores, over the book's 5-minute budget for the chapter.
BOOK_LABELS = (100, 3000)


def cli_run(seed: int = 0, refresh: bool = False) -> dict:
    """Train (or load) M1, then M2 and both baselines for every number of labels the
    book shows; return the test accuracies and the training times."""
    metrics = {}
    for n in BOOK_LABELS:
        _, meta = fit(SSVAEConfig(num_labels=n, seed=seed), refresh=refresh)
        if n == BOOK_LABELS[0]:
            metrics["M1 train seconds (shared)"] = meta["m1_seconds"]
        metrics[f"SS-VAE test accuracy, {n} labels"] = meta["test_accuracy"]
        metrics[f"SS-VAE train seconds, {n} labels"] = meta["seconds"]
        for features in ("pixels", "m1"):
            _, base = fit_baseline(BaselineConfig(num_labels=n, features=features,
                                                  seed=seed), refresh=refresh)
            metrics[f"labelled only ({features}) test accuracy, {n} labels"] = \
                base["test_accuracy"]
    return metrics
