"""Chapter 1: Bayesian linear regression, the four steps of Bayesian modeling in Pyro.

Toy data with known truth, the model (``BayesianRegression``) and its heavy-tailed
rewrite (``RobustRegression``), a hand-written mean-field guide, the SVI loop that fits
a guide (``train``), NUTS as a second inference engine (``run_nuts``), the exact
posterior, and the posterior predictive checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.distributions import constraints
from pyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoMultivariateNormal, AutoNormal
from pyro.nn import PyroModule, PyroSample

from bdl_src.train import check_finite, lr_decay, progress, show_progress


@dataclass(frozen=True)
class ToyConfig:
    """A toy data set y = intercept + slope * x + noise, with x uniform on
    [x_center - 3, x_center + 3]."""

    intercept: float = 1.0
    slope: float = 2.0
    noise: float = 0.8  # scale of the noise
    # None: Gaussian noise; a number: Student-t with that df
    noise_df: float | None = None
    num_train: int = 200
    num_test: int = 1000  # held out for the coverage checks
    # 0: intercept and slope nearly uncorrelated a posteriori; far from 0: correlated
    x_center: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class ToyData:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    config: ToyConfig


def make_toy_data(config: ToyConfig = ToyConfig()) -> ToyData:
    """Draw training and held-out points from the known line (seeded)."""
    gen = torch.Generator().manual_seed(config.seed)
    n = config.num_train + config.num_test
    x = torch.rand(n, generator=gen) * 6 - 3 + config.x_center
    if config.noise_df is None:
        eps = torch.randn(n, generator=gen)
    else:  # Student-t: a normal divided by the root of a scaled chi-square
        chi2 = torch.distributions.Chi2(config.noise_df)
        torch.manual_seed(config.seed)  # Chi2 has no generator argument
        eps = (torch.randn(n, generator=gen)
               / (chi2.sample((n,)) / config.noise_df).sqrt())
    y = config.intercept + config.slope * x + config.noise * eps
    k = config.num_train
    return ToyData(x[:k], y[:k], x[k:], y[k:], config)


class BayesianRegression(PyroModule):
    """y_i ~ Normal(intercept + slope * x_i, sigma) for i in the plate "data".

    Priors: intercept, slope ~ Normal(0, prior_scale); sigma ~ HalfNormal(noise_scale).
    ``x``: shape (N,); ``y``: shape (N,) or None (then y is sampled).
    """

    def __init__(self, prior_scale: float = 5.0, noise_scale: float = 2.0):
        super().__init__()
        self.prior_scale, self.noise_scale = prior_scale, noise_scale
        self.intercept = PyroSample(dist.Normal(0.0, prior_scale))
        self.slope = PyroSample(dist.Normal(0.0, prior_scale))
        self.sigma = PyroSample(dist.HalfNormal(noise_scale))

    def forward(self, x, y=None):
        # Read the priors' samples outside the plate: inside it they would be drawn per
        # point.
        intercept, slope, sigma = self.intercept, self.slope, self.sigma
        mean = intercept + slope * x
        with pyro.plate("data", x.shape[-1]):
            return pyro.sample("obs", dist.Normal(mean, sigma), obs=y)


class RobustRegression(BayesianRegression):
    """The rewrite for heavy-tailed noise: y_i ~ StudentT(df, intercept + slope x_i,
    sigma).

    The degrees of freedom are learned too: df ~ Gamma(2, 0.1), whose mean of 20 is
    close to Gaussian while leaving room for tails as heavy as the data demand.
    """

    def __init__(self, prior_scale: float = 5.0, noise_scale: float = 2.0):
        super().__init__(prior_scale, noise_scale)
        self.df = PyroSample(dist.Gamma(2.0, 0.1))

    def forward(self, x, y=None):
        intercept, slope, sigma, df = self.intercept, self.slope, self.sigma, self.df
        mean = intercept + slope * x
        with pyro.plate("data", x.shape[-1]):
            return pyro.sample("obs", dist.StudentT(df, mean, sigma), obs=y)


def mean_field_guide(x, y=None):
    """q(intercept) q(slope) q(sigma): two Normals and a LogNormal, each with its own
    learnable location and positive scale."""
    intercept_loc = pyro.param("intercept_loc", torch.tensor(0.0))
    intercept_scale = pyro.param("intercept_scale", torch.tensor(0.1),
                                 constraint=constraints.positive)
    slope_loc = pyro.param("slope_loc", torch.tensor(0.0))
    slope_scale = pyro.param("slope_scale", torch.tensor(0.1),
                             constraint=constraints.positive)
    sigma_loc = pyro.param("sigma_loc", torch.tensor(0.0))
    sigma_scale = pyro.param("sigma_scale", torch.tensor(0.1),
                             constraint=constraints.positive)
    pyro.sample("intercept", dist.Normal(intercept_loc, intercept_scale))
    pyro.sample("slope", dist.Normal(slope_loc, slope_scale))
    pyro.sample("sigma", dist.LogNormal(sigma_loc, sigma_scale))


@dataclass(frozen=True)
class FitConfig:
    """How to fit a guide: which model and guide, and the SVI settings."""

    model: str = "gaussian"  # "gaussian" (BayesianRegression) or "student" (Robust...)
    # "mean_field" (hand-written), "auto" (AutoNormal) or "full_rank"
    # (AutoMultivariateNormal: one Gaussian over all latent variables, correlations too)
    guide: str = "mean_field"
    num_steps: int = 1500
    lr: float = 0.05  # decays 500-fold over the run, to 1e-4
    num_particles: int = 128  # ELBO samples per step, vectorised: nearly free
    seed: int = 0


def build(config: FitConfig):
    """The (model, guide) pair that ``config`` names."""
    if config.model == "student" and config.guide == "mean_field":
        raise ValueError("mean_field_guide has no site for df: fit the robust model "
                         "with guide='auto'")
    model = {"gaussian": BayesianRegression,
             "student": RobustRegression}[config.model]()
    guides = {"mean_field": lambda m: mean_field_guide, "auto": AutoNormal,
              "full_rank": AutoMultivariateNormal}
    return model, guides[config.guide](model)


def train(model, guide, x: torch.Tensor, y: torch.Tensor, config: FitConfig) -> list:
    """Fit ``guide`` to ``model`` on the data ``(x, y)`` by SVI; return the loss (the
    negative ELBO) of every step. Shown in book/bayesian_modeling.md."""
    pyro.clear_param_store()
    pyro.set_rng_seed(config.seed)
    optim = pyro.optim.ClippedAdam(
        {"lr": config.lr,
         "lrd": lr_decay(config.lr, 2e-3 * config.lr, config.num_steps)})
    elbo = Trace_ELBO(num_particles=config.num_particles, vectorize_particles=True,
                      max_plate_nesting=1)
    svi = SVI(model, guide, optim, loss=elbo)
    losses = []
    for step in progress(range(config.num_steps), desc="regression"):
        loss = svi.step(x, y)
        check_finite(loss, "regression", step + 1)
        losses.append(loss)
    return losses


@dataclass(frozen=True)
class NUTSConfig:
    """Settings of the NUTS sampler."""

    num_samples: int = 1000  # kept draws per chain
    warmup_steps: int = 500  # adapt the step size and mass matrix, then discard
    num_chains: int = 2  # independent chains, run one after the other
    seed: int = 0


def run_nuts(model, x: torch.Tensor, y: torch.Tensor, config: NUTSConfig) -> dict:
    """Draw from the posterior of ``model`` given ``(x, y)`` with NUTS; return each
    latent site's draws as nested lists of shape (num_chains, num_samples). Shown in
    book/bayesian_modeling.md."""
    chains = []
    for chain in range(config.num_chains):
        pyro.set_rng_seed(config.seed + chain)
        mcmc = MCMC(NUTS(model), num_samples=config.num_samples,
                    warmup_steps=config.warmup_steps,
                    disable_progbar=not show_progress())
        mcmc.run(x, y)
        chains.append(mcmc.get_samples())
    return {name: torch.stack([c[name] for c in chains]).tolist()
            for name in chains[0]}


def prior_samples(model, x, num_samples: int = 500, seed: int = 0) -> dict:
    """Samples of every site from the prior (no guide): the prior predictive at
    ``x``."""
    pyro.set_rng_seed(seed)
    with torch.no_grad():
        return Predictive(model, num_samples=num_samples, parallel=True)(x)


def posterior_samples(model, guide, x, num_samples: int = 4000, seed: int = 0) -> dict:
    """Samples of every latent site from the guide and of ``obs`` at ``x`` (posterior
    predictive), as a dict of tensors with a leading sample dimension."""
    pyro.set_rng_seed(seed)
    predictive = Predictive(model, guide=guide, num_samples=num_samples, parallel=True,
                            return_sites=["intercept", "slope", "sigma", "df", "obs"])
    with torch.no_grad():
        return {k: v.reshape(num_samples, -1).squeeze(-1)
                for k, v in predictive(x).items()}


def coverage(samples: torch.Tensor, y: torch.Tensor, level: float) -> float:
    """Share of ``y`` inside the central ``level`` interval of predictive ``samples``
    (shape (S, N))."""
    lo, hi = torch.quantile(samples, torch.tensor([(1 - level) / 2, (1 + level) / 2]),
                            dim=0)
    return ((y >= lo) & (y <= hi)).float().mean().item()


def coverage_curve(samples: torch.Tensor, y: torch.Tensor, levels=None):
    """``(levels, coverage)`` for central intervals from 5 % to 95 %."""
    levels = torch.linspace(0.05, 0.95, 19) if levels is None else levels
    return levels, torch.tensor([coverage(samples, y, lvl.item()) for lvl in levels])


def exact_posterior(x, y, prior_scale: float = 5.0, noise_scale: float = 2.0,
                    grid_size: int = 4000) -> dict:
    """The exact posterior of ``BayesianRegression`` by one-dimensional quadrature.

    Given sigma the model is conjugate: (intercept, slope) | sigma, y is Gaussian with a
    closed form, and so is the marginal likelihood p(y | sigma). Weighting a fine grid
    of sigma values by prior x marginal likelihood gives p(sigma | y) and, as a mixture
    of those Gaussians, the exact marginals of intercept and slope.
    Returns the means and standard deviations of the three parameters, the sigma grid
    with its weights, and the per-grid-point Gaussian means and covariances.
    """
    x, y = x.double(), y.double()
    X = torch.stack([torch.ones_like(x), x], dim=-1)  # (N, 2)
    n = len(y)
    resid = y - X @ torch.linalg.lstsq(X, y.unsqueeze(-1)).solution.squeeze(-1)
    s = resid.std().item()
    # A log-spaced grid wide enough for small data sets' long right tail.
    sig = torch.logspace(math.log10(0.02 * s), math.log10(30.0 * s), grid_size,
                         dtype=torch.float64)  # (G,)
    s2 = sig.pow(2)[:, None, None]
    prec = (X.T @ X / s2
            + torch.eye(2, dtype=torch.float64) / prior_scale**2)  # (G, 2, 2)
    cov = torch.linalg.inv(prec)
    xty = X.T @ y
    mean = (cov @ xty) / sig.pow(2)[:, None]  # (G, 2)
    # log N(y; 0, s2 I + tau2 X X^T) via the matrix determinant lemma and Woodbury.
    logdet = n * sig.pow(2).log() + torch.logdet(
        torch.eye(2, dtype=torch.float64) + prior_scale**2 * (X.T @ X) / s2)
    quad = (y @ y) / sig.pow(2) - (xty @ cov @ xty) / sig.pow(4)
    log_ml = -0.5 * (n * math.log(2 * math.pi) + logdet + quad)
    # On a log-spaced grid each point stands for a width proportional to sigma.
    log_w = log_ml + dist.HalfNormal(noise_scale).log_prob(sig) + sig.log()
    w = torch.softmax(log_w, dim=0)
    m = (w[:, None] * mean).sum(0)
    second = (w[:, None, None] * (cov + mean[:, :, None] * mean[:, None, :])).sum(0)
    sd = (second.diagonal() - m.pow(2)).sqrt()
    sig_mean = (w * sig).sum()
    sig_sd = ((w * sig.pow(2)).sum() - sig_mean.pow(2)).sqrt()
    return {
        "mean": {"intercept": m[0].item(), "slope": m[1].item(),
                 "sigma": sig_mean.item()},
        "sd": {"intercept": sd[0].item(), "slope": sd[1].item(),
               "sigma": sig_sd.item()},
        "sigma_grid": sig, "weights": w, "cond_mean": mean, "cond_cov": cov,
    }


def exact_samples(post: dict, num_samples: int, seed: int = 0) -> dict:
    """Draws from the exact posterior of ``exact_posterior``: sigma from its grid
    weights, then (intercept, slope) from their Gaussian given that sigma."""
    gen = torch.Generator().manual_seed(seed)
    i = torch.multinomial(post["weights"], num_samples, replacement=True, generator=gen)
    chol = torch.linalg.cholesky(post["cond_cov"][i])  # (S, 2, 2)
    eps = torch.randn(num_samples, 2, 1, generator=gen, dtype=chol.dtype)
    ab = post["cond_mean"][i] + (chol @ eps).squeeze(-1)  # (S, 2)
    return {"intercept": ab[:, 0].float(), "slope": ab[:, 1].float(),
            "sigma": post["sigma_grid"][i].float()}


def mean_field_optimum_sd(post: dict) -> dict:
    """The standard deviations that minimise KL(q||p) over fully factorised Gaussians
    q when p is Gaussian: 1 / sqrt(diagonal of p's precision), here with sigma fixed at
    its posterior mean. They are the *conditional* sds, smaller than the marginal ones
    whenever the variables are correlated."""
    k = torch.argmin((post["sigma_grid"] - post["mean"]["sigma"]).abs())
    precision = torch.linalg.inv(post["cond_cov"][k])
    sd = precision.diagonal().rsqrt()
    return {"intercept": sd[0].item(), "slope": sd[1].item()}


def exact_density(post: dict, name: str, values: torch.Tensor) -> torch.Tensor:
    """Exact posterior density of ``name`` at ``values`` from ``exact_posterior``
    output."""
    values = values.double()
    grid, w = post["sigma_grid"], post["weights"]
    if name == "sigma":  # weight / width of the log-spaced cell = density
        log_step = (grid[1].log() - grid[0].log()).item()
        density = w / (grid * log_step)
        return torch.from_numpy(
            np.interp(values.numpy(), grid.numpy(), density.numpy()))
    i = {"intercept": 0, "slope": 1}[name]
    comps = dist.Normal(post["cond_mean"][:, i], post["cond_cov"][:, i, i].sqrt())
    return (w * comps.log_prob(values[:, None]).exp()).sum(-1)


def exact_marginals(post: dict, num_points: int = 400) -> dict:
    """``name -> (grid, density)`` of the exact posterior, over mean +- 5 sd."""
    out = {}
    for name in ("intercept", "slope", "sigma"):
        m, sd = post["mean"][name], post["sd"][name]
        grid = torch.linspace(m - 5 * sd, m + 5 * sd, num_points)
        out[name] = (grid, exact_density(post, name, grid))
    return out
