"""Chapter 2: a Bayesian neural network on MNIST, and how far to trust its doubt.

The model (``BayesianMLP``) puts a Normal prior on every weight and bias of a
two-hidden-layer perceptron and a categorical likelihood on the digit; the guide
(``MeanFieldGuide``) is a hand-written mean-field Normal; ``LocalReparameterization``
is an effect handler that makes SVI sample pre-activations instead of weights.
``DeterministicMLP`` is the ordinary PyTorch twin. ``train_bnn`` (plain SVI) and
``train_twin`` (a plain PyTorch loop) train them; ``predict_*`` return class
probabilities that ``bdl_src.metrics`` scores. The book's runs of them, through the
checkpoint cache, are in ``bdl_src.runs.bnn``.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro import poutine
from pyro.infer import SVI, TraceMeanField_ELBO
from pyro.nn import PyroModule, PyroSample
from pyro.poutine.messenger import Messenger
from pyro.poutine.runtime import effectful
from torch import nn

from bdl_src import metrics
from bdl_src.data import ImageData, load_images, train_val_split
from bdl_src.train import check_finite, lr_decay, minibatches, num_batches, progress

# --- the model -----------------------------------------------------------------------

@effectful(type="linear")
def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``x @ weight.T + bias``, announced to Pyro's effect handlers (message type
    ``"linear"``) so that one of them (``LocalReparameterization``) may compute it
    differently."""
    return torch.addmm(bias, x, weight.T)


class BayesianLinear(PyroModule):
    """An affine layer whose weight ``(out, in)`` and bias ``(out,)`` are random:
    every entry ~ Normal(0, prior_scale) independently."""

    def __init__(self, in_features: int, out_features: int, prior_scale: float):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.prior_scale = prior_scale
        prior = dist.Normal(0.0, prior_scale)
        self.weight = PyroSample(prior.expand([out_features, in_features]).to_event(2))
        self.bias = PyroSample(prior.expand([out_features]).to_event(1))

    def forward(self, x):
        return linear(x, self.weight, self.bias)


class BayesianMLP(PyroModule):
    """p(W) p(y | x, W): a 784-hidden-hidden-10 ReLU perceptron with random weights.

    Priors: every weight and bias ~ Normal(0, s), with s = prior_scale, or
    s = prior_scale / sqrt(fan_in) for a layer with fan_in inputs when ``fan_in_prior``
    (then a unit's pre-activation has about the same scale in every layer). Likelihood:
    y_i ~ Categorical(softmax(f(x_i; W))) for i in the plate "data" of ``num_data``
    training images. ``x``: (B, 784) in [0, 1]; ``y``: (B,) digits or None.
    Returns the logits (B, 10).
    """

    def __init__(self, num_data: int, hidden_dim: int = 400,
                 prior_scale: float = 1.0, in_dim: int = 784, num_classes: int = 10,
                 fan_in_prior: bool = False):
        super().__init__()
        self.num_data = num_data

        def scale(fan_in):
            return prior_scale / math.sqrt(fan_in) if fan_in_prior else prior_scale

        self.fc1 = BayesianLinear(in_dim, hidden_dim, scale(in_dim))
        self.fc2 = BayesianLinear(hidden_dim, hidden_dim, scale(hidden_dim))
        self.fc3 = BayesianLinear(hidden_dim, num_classes, scale(hidden_dim))

    def forward(self, x, y=None):
        h = F.relu(self.fc1(x))
        h = F.relu(self.fc2(h))
        logits = self.fc3(h)
        # x is a mini-batch of the num_data training images: `subsample` says so, and
        # the plate scales the log-likelihood by num_data / len(x) to stand for all.
        subsample = torch.arange(x.shape[0], device=x.device)
        with pyro.plate("data", self.num_data, subsample=subsample):
            pyro.sample("obs", dist.Categorical(logits=logits), obs=y)
        return logits


# --- the guide -----------------------------------------------------------------------

def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


class MeanFieldGuide(nn.Module):
    """q(W) = prod_j Normal(W_j; loc_j, softplus(rho_j)) over every weight and bias of
    ``model``: two learnable numbers per weight, no correlations.

    Means start like PyTorch's own layers (uniform within 1/sqrt(fan_in)), scales at
    ``init_scale``; ``generator`` seeds the means.
    """

    def __init__(self, model: BayesianMLP, init_scale: float = 1e-3,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.loc, self.rho = nn.ParameterDict(), nn.ParameterDict()
        self.sites = {}  # parameter key -> (site name, event dims)
        rho0 = _inverse_softplus(init_scale)
        for name, layer in model.named_modules():
            if not isinstance(layer, BayesianLinear):
                continue
            bound = 1.0 / math.sqrt(layer.in_features)
            for kind, shape in [("weight", (layer.out_features, layer.in_features)),
                                ("bias", (layer.out_features,))]:
                key = f"{name}_{kind}"
                loc = (torch.rand(shape, generator=generator) * 2 - 1) * bound
                self.loc[key] = nn.Parameter(loc)
                self.rho[key] = nn.Parameter(torch.full(shape, rho0))
                self.sites[key] = (f"{name}.{kind}", len(shape))

    def forward(self, x=None, y=None):
        pyro.module("guide", self)  # hand the parameters to Pyro's optimiser
        for key, (site, event_dims) in self.sites.items():
            scale = F.softplus(self.rho[key])
            pyro.sample(site, dist.Normal(self.loc[key], scale).to_event(event_dims))


# --- local reparameterisation: an effect handler -------------------------------------

class LocalReparameterization(Messenger):
    """Sample pre-activations instead of weights (Kingma, Salimans & Welling, 2015).

    While active, it remembers every latent value drawn from a Normal (in SVI: the
    guide's draws, which the model then replays). A ``linear(x, W, b)`` whose W and b
    are such draws returns a draw from the exact distribution of the pre-activation,
    Normal(x m_W^T + m_b, x^2 (s_W^2)^T + s_b^2), independently for every example. The
    expected log-likelihood is unchanged; its gradient is far less noisy. Use one
    handler for both model and guide: ``lr = LocalReparameterization()``, then
    ``lr(model)`` and ``lr(guide)``.
    """

    def __init__(self):
        super().__init__()
        self._normals: dict[int, tuple[weakref.ref, dist.Normal]] = {}

    def _pyro_post_sample(self, msg):
        fn, value = msg["fn"], msg["value"]
        while isinstance(fn, dist.Independent):
            fn = fn.base_dist
        key = id(value)
        # The first distribution a value was drawn from wins: the guide's, not the prior
        if msg["is_observed"] or not isinstance(fn, dist.Normal):
            return
        if key in self._normals:
            return
        # Forget the entry when the value is freed (after the step), so ids never clash.
        ref = weakref.ref(value, lambda _: self._normals.pop(key, None))
        self._normals[key] = (ref, fn)

    def _normal(self, value):
        entry = self._normals.get(id(value))
        return entry[1] if entry is not None and entry[0]() is value else None

    def _pyro_linear(self, msg):
        x, weight, bias = msg["args"]
        qw, qb = self._normal(weight), self._normal(bias)
        if qw is None or qb is None:
            return
        mean = torch.addmm(qb.loc, x, qw.loc.T)
        var = torch.addmm(qb.scale.pow(2), x.pow(2), qw.scale.pow(2).T)
        msg["value"] = mean + var.sqrt() * torch.randn_like(mean)


# --- the deterministic twin ----------------------------------------------------------

class DeterministicMLP(nn.Module):
    """The same 784-hidden-hidden-10 ReLU perceptron with ordinary (point) weights;
    with ``dropout`` > 0, each hidden unit is zeroed with that probability while the
    module is in training mode (MC dropout keeps it so at prediction time).
    ``features(x)`` (B, hidden) is the last hidden layer, ``forward(x)`` the logits."""

    def __init__(self, hidden_dim: int = 400, in_dim: int = 784,
                 num_classes: int = 10, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, num_classes)
        self.drop = nn.Dropout(dropout)

    def features(self, x):
        h = self.drop(F.relu(self.fc1(x)))
        return self.drop(F.relu(self.fc2(h)))

    def forward(self, x):
        return self.fc3(self.features(x))


# --- configuration, data and training ------------------------------------------------

@dataclass(frozen=True)
class BNNConfig:
    """Architecture and training settings, shared by the BNN and its twin where they
    apply. The defaults are the book's, chosen on the validation split."""

    hidden_dim: int = 400  # units in each of the two hidden layers
    prior_scale: float = 1.0  # prior sd of every weight (c in c / sqrt(fan_in) ...
    fan_in_prior: bool = True  # ... when the prior is scaled by each layer's fan-in)
    temperature: float = 0.01  # each training image counts 1/temperature times
    init_scale: float = 1e-3  # initial posterior standard deviation of every weight
    num_epochs: int = 8  # passes over the training images
    batch_size: int = 1024  # images per step
    lr: float = 1e-2  # Adam's initial learning rate ...
    lr_final: float = 1e-4  # ... decayed exponentially to this at the last step
    scale_lr_factor: float = 10.0  # the scales' parameters learn this many times faster
    num_val: int = 5000  # MNIST training images held out for validation
    seed: int = 0


def load_data(config: BNNConfig = BNNConfig()) -> dict[str, ImageData]:
    """MNIST train (minus validation), validation (``val``, the only data any setting
    is chosen on) and test; Fashion-MNIST test, the out-of-distribution set, used
    for evaluation only."""
    mnist = load_images("mnist", train=True)
    fit_set, val = train_val_split(mnist, config.num_val, seed=0)
    return {"train": fit_set, "val": val, "test": load_images("mnist", train=False),
            "fashion": load_images("fashion", train=False)}


def rotate(images: torch.Tensor, angle: float) -> torch.Tensor:
    """Images (N, 784) turned by ``angle`` degrees anticlockwise about their centre
    (bilinear, blank outside the frame): the dataset shift of Ovadia et al. (2019)."""
    from torchvision.transforms.functional import InterpolationMode
    from torchvision.transforms.functional import rotate as tv_rotate

    turned = tv_rotate(images.view(-1, 1, 28, 28), float(angle),
                       interpolation=InterpolationMode.BILINEAR)
    return turned.reshape(-1, 784)


def train_bnn(model: BayesianMLP, guide: MeanFieldGuide, x: torch.Tensor,
              y: torch.Tensor, config: BNNConfig) -> dict:
    """Fit ``guide`` to ``model`` on images ``x`` (N, 784) and digits ``y`` (N,) by SVI
    with the analytic KL and local reparameterisation, ``config.num_epochs`` passes of
    shuffled mini-batches. Returns the loss (negative ELBO) of every step and the mean
    loss of every epoch. Shown in book/bnn.md."""
    pyro.clear_param_store()
    pyro.set_rng_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    num_steps = config.num_epochs * num_batches(len(x), config.batch_size)
    lrd = lr_decay(config.lr, config.lr_final, num_steps)  # per-step decay factor

    def adam_args(name):  # Pyro asks for each parameter's settings by its name
        factor = config.scale_lr_factor if "rho" in name else 1.0
        return {"lr": config.lr * factor, "lrd": lrd}

    optim = pyro.optim.ClippedAdam(adam_args)
    lr = LocalReparameterization()  # one handler for both, so the model sees q's draws
    svi = SVI(lr(model), lr(guide), optim, loss=TraceMeanField_ELBO())
    losses, epoch_losses = [], []
    for epoch in progress(range(config.num_epochs), desc="BNN"):
        first = len(losses)
        for x_batch, y_batch in minibatches((x, y), config.batch_size, generator):
            loss = svi.step(x_batch, y_batch)
            check_finite(loss, "BNN", len(losses) + 1, epoch + 1)
            losses.append(loss)
        epoch_losses.append(sum(losses[first:]) / len(losses[first:]))
    return {"losses": losses, "epoch_losses": epoch_losses}


def train_twin(net: DeterministicMLP, x: torch.Tensor, y: torch.Tensor,
               config) -> dict:
    """Train a deterministic network by minimising the cross-entropy with Adam: the
    epochs, batch size and learning-rate schedule of ``config`` (a ``BNNConfig`` or the
    baselines' ``NetConfig``). Dropout, if the network has it, is on. Returns the loss
    of every step and the mean loss of every epoch. Shown in book/bnn.md."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    num_steps = config.num_epochs * num_batches(len(x), config.batch_size)
    net.train()  # dropout on while training
    optim = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(
        optim, lr_decay(config.lr, config.lr_final, num_steps))
    losses, epoch_losses = [], []
    for epoch in progress(range(config.num_epochs), desc="twin"):
        first = len(losses)
        for x_batch, y_batch in minibatches((x, y), config.batch_size, generator):
            loss = F.cross_entropy(net(x_batch), y_batch)
            optim.zero_grad()
            loss.backward()
            optim.step()
            schedule.step()
            value = loss.item()
            check_finite(value, "twin", len(losses) + 1, epoch + 1)
            losses.append(value)
        epoch_losses.append(sum(losses[first:]) / len(losses[first:]))
    return {"losses": losses, "epoch_losses": epoch_losses}


# --- prediction ----------------------------------------------------------------------

@torch.no_grad()
def predict_bnn(model, guide, x: torch.Tensor, num_samples: int = 50, seed: int = 0,
                batch_size: int = 5000) -> torch.Tensor:
    """Class probabilities p(y | x, W_s) under ``num_samples`` weight draws W_s ~ q:
    a tensor (num_samples, N, 10). Their mean is the posterior predictive."""
    pyro.set_rng_seed(seed)
    device = next(guide.parameters()).device
    out = []
    for _ in range(num_samples):
        guide_trace = poutine.trace(guide).get_trace()
        replayed = poutine.replay(model, trace=guide_trace)
        out.append(torch.cat([replayed(xb.to(device)).softmax(-1).cpu()
                              for xb in x.split(batch_size)]))
    return torch.stack(out)


@torch.no_grad()
def predict_twin(net, x: torch.Tensor, batch_size: int = 5000) -> torch.Tensor:
    """Class probabilities (N, 10) of a deterministic network (dropout off)."""
    net.eval()
    device = next(net.parameters()).device
    return torch.cat([net(xb.to(device)).softmax(-1).cpu()
                      for xb in x.split(batch_size)])


@torch.no_grad()
def predict_prior(model: BayesianMLP, x: torch.Tensor, num_samples: int = 100,
                  seed: int = 0) -> torch.Tensor:
    """The prior predictive check: class probabilities (num_samples, N, 10) of
    networks whose weights are drawn from the prior, W_s ~ p(W)."""
    pyro.set_rng_seed(seed)
    return torch.stack([model(x).softmax(-1) for _ in range(num_samples)])


# --- evaluation ----------------------------------------------------------------------

def unit_kl(model: BayesianMLP, guide: MeanFieldGuide) -> torch.Tensor:
    """For every hidden unit (fc1's, then fc2's: (2 * hidden_dim,)), the mean over its
    incoming weights of KL(q(w) || p(w)) in nats: near zero when the posterior left
    the unit's weights where the prior put them, i.e. the unit was switched off."""
    out = []
    for name in ("fc1", "fc2"):
        sigma = getattr(model, name).prior_scale
        loc = guide.loc[f"{name}_weight"].detach()
        scale = F.softplus(guide.rho[f"{name}_weight"].detach())
        kl = (math.log(sigma) - scale.log() + (scale ** 2 + loc ** 2) / (2 * sigma ** 2)
              - 0.5)
        out.append(kl.mean(1).cpu())
    return torch.cat(out)


def input_scale_map(guide: MeanFieldGuide) -> torch.Tensor:
    """Posterior standard deviation of the first layer's weights, averaged over hidden
    units, for each of the 784 input pixels: how unsure the network is about what ink
    in that pixel means."""
    return F.softplus(guide.rho["fc1_weight"]).detach().mean(0).cpu()


def evaluate(sample_probs: dict, twin_probs: dict, data: dict,
             refuse: float = 0.05) -> dict:
    """Headline metrics of both networks on MNIST test and Fashion-MNIST.

    ``sample_probs``: ``{"test": (S, N, 10), "fashion": (S, M, 10)}`` from the BNN;
    ``twin_probs``: ``{"test": (N, 10), "fashion": (M, 10)}``. Scores for telling the
    data sets apart: predictive entropy (both) and mutual information (BNN only)."""
    labels = data["test"].labels
    out = {}
    for name, sp, p in [("bnn", sample_probs, sample_probs["test"].mean(0)),
                        ("twin", twin_probs, twin_probs["test"])]:
        h_in = metrics.predictive_entropy(sp["test"])
        h_out = metrics.predictive_entropy(sp["fashion"])
        out[f"{name}_accuracy"] = metrics.accuracy(p, labels)
        out[f"{name}_nll"] = metrics.nll(p, labels)
        out[f"{name}_ece"] = metrics.ece(p, labels)
        out[f"{name}_auroc_entropy"] = metrics.auroc(h_in, h_out)
        out[f"{name}_accuracy_refuse"] = float(
            metrics.accuracy_rejection(p, labels, h_in, [refuse])[0])
    mi = {k: metrics.mutual_information(v) for k, v in sample_probs.items()}
    out["bnn_auroc_mi"] = metrics.auroc(mi["test"], mi["fashion"])
    return out
