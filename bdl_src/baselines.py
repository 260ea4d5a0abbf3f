"""Chapter 2's baselines: what a practitioner would use instead of a BNN.

All start from ``bnn.DeterministicMLP``, trained by the plain loop ``bnn.train_twin``
with the settings of a ``NetConfig``:

- the deterministic network, with its logits divided by a temperature fitted on
  validation data (temperature scaling, Guo et al. 2017);
- MC dropout: a network trained with dropout and kept stochastic at prediction time
  (Gal & Ghahramani 2016);
- a deep ensemble: several networks from different random initialisations and batch
  orders, their probabilities averaged (Lakshminarayanan et al. 2017);
- a last-layer Laplace approximation: a Gaussian posterior over the last layer's
  weights around the trained ones, its precision the prior's plus a Kronecker-factored
  generalised Gauss-Newton matrix (Ritter et al. 2018; Daxberger et al. 2021).

Every ``predict_*`` returns class probabilities (S, N, 10) for S samples (S = 1 for a
single network), scored by ``bdl_src.metrics``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from bdl_src.bnn import DeterministicMLP


@dataclass(frozen=True)
class NetConfig:
    """Settings of the deterministic networks (the twin, the ensemble's members, MC
    dropout), chosen on the MNIST validation split (bench/select_bnn.py)."""

    hidden_dim: int = 400  # units in each of the two hidden layers
    dropout: float = 0.0  # probability of zeroing a hidden unit (MC dropout only)
    num_epochs: int = 4  # passes over the training images
    batch_size: int = 128  # images per step
    lr: float = 2e-3  # Adam's initial learning rate ...
    lr_final: float = 1e-4  # ... decayed exponentially to this at the last step
    seed: int = 0


@torch.no_grad()
def logits_of(net: DeterministicMLP, x: torch.Tensor,
              batch_size: int = 5000) -> torch.Tensor:
    """Logits (N, 10) of the network with dropout off."""
    net.eval()
    device = next(net.parameters()).device
    return torch.cat([net(xb.to(device)).cpu() for xb in x.split(batch_size)])


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature T > 0 minimising the NLL of softmax(logits / T) on held-out
    ``logits`` (N, 10) and ``labels`` (N,) (Guo et al. 2017)."""
    log_t = torch.zeros((), requires_grad=True)
    optim = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100,
                              line_search_fn="strong_wolfe")

    def closure():
        optim.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optim.step(closure)
    return log_t.exp().item()


def predict_scaled(net: DeterministicMLP, x: torch.Tensor,
                   temperature: float = 1.0) -> torch.Tensor:
    """softmax(logits / temperature): (1, N, 10)."""
    return (logits_of(net, x) / temperature).softmax(-1).unsqueeze(0)


@torch.no_grad()
def predict_mc_dropout(net: DeterministicMLP, x: torch.Tensor, num_samples: int = 20,
                       seed: int = 0, batch_size: int = 5000) -> torch.Tensor:
    """Class probabilities (num_samples, N, 10) under ``num_samples`` dropout masks
    (dropout kept on at prediction time)."""
    net.train()
    device = next(net.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = torch.stack([torch.cat([net(xb.to(device)).softmax(-1).cpu()
                                      for xb in x.split(batch_size)])
                           for _ in range(num_samples)])
    net.eval()
    return out


def predict_ensemble(nets: list[DeterministicMLP], x: torch.Tensor) -> torch.Tensor:
    """Class probabilities (M, N, 10) of the M members; their mean is the ensemble's
    prediction."""
    return torch.cat([predict_scaled(net, x) for net in nets])


# --- last-layer Laplace ---------------------------------------------------------

@torch.no_grad()
def fit_last_layer_laplace(net: DeterministicMLP, x: torch.Tensor,
                           batch_size: int = 5000) -> dict:
    """The Kronecker factors of the generalised Gauss-Newton matrix of the training
    negative log-likelihood with respect to the last layer's weights and bias
    (10, hidden + 1):  H ~= G (x) A,  A = sum_i phi_i phi_i^T over the features
    phi_i = (h_i, 1) of the N training images, G = mean_i diag(p_i) - p_i p_i^T.
    Returned as eigendecompositions, ready for any prior precision."""
    net.eval()
    device = next(net.parameters()).device
    a, g = 0.0, 0.0
    for xb in x.split(batch_size):
        phi = F.pad(net.features(xb.to(device)), (0, 1), value=1.0).double()  # (B, H+1)
        p = net.fc3(phi[:, :-1].float()).softmax(-1).double()  # (B, 10)
        a = a + phi.T @ phi
        g = g + torch.diag_embed(p).sum(0) - p.T @ p
    g = g / len(x)
    eig_g, vec_g = torch.linalg.eigh(g)
    eig_a, vec_a = torch.linalg.eigh(a)
    return {"eig_g": eig_g.clamp_min(0).cpu(), "vec_g": vec_g.cpu(),
            "eig_a": eig_a.clamp_min(0).cpu(), "vec_a": vec_a.cpu()}


@torch.no_grad()
def predict_laplace(net: DeterministicMLP, fit: dict, x: torch.Tensor,
                    prior_precision: float, num_samples: int = 20, seed: int = 0,
                    batch_size: int = 5000) -> torch.Tensor:
    """Class probabilities (num_samples, N, 10) under last-layer weights drawn from
    the Laplace posterior N(W_MAP, (prior_precision I + G (x) A)^-1). The logits f of
    an image are then Gaussian: mean f_MAP, covariance Q_G diag(m) Q_G^T with
    m_a = sum_b psi_b^2 / (g_a a_b + prior_precision), psi = Q_A^T phi; we sample
    them directly."""
    net.eval()
    device = next(net.parameters()).device
    inv = 1.0 / (fit["eig_g"][:, None] * fit["eig_a"][None, :] + prior_precision)
    generator = torch.Generator().manual_seed(seed)
    out = []
    for xb in x.split(batch_size):
        h = net.features(xb.to(device)).cpu()
        mean = net.fc3(h.to(device)).cpu().double()  # (B, 10)
        psi = F.pad(h, (0, 1), value=1.0).double() @ fit["vec_a"]  # (B, H+1)
        m = psi.pow(2) @ inv.T  # (B, 10): logit variances in G's eigenbasis
        eps = torch.randn((num_samples, *mean.shape), generator=generator,
                          dtype=torch.float64)
        logits = mean + (m.sqrt() * eps) @ fit["vec_g"].T  # (S, B, 10)
        out.append(logits.softmax(-1).float())
    return torch.cat(out, dim=1)


def select_prior_precision(net: DeterministicMLP, fit: dict, x_val: torch.Tensor,
                           y_val: torch.Tensor, grid=None,
                           num_samples: int = 20) -> float:
    """The prior precision, from a log-spaced ``grid``, whose Laplace predictive has the
    lowest NLL on validation images ``x_val`` with labels ``y_val``."""
    grid = [10.0 ** k for k in range(-2, 6)] if grid is None else grid
    nll = []
    for tau in grid:
        p = predict_laplace(net, fit, x_val, tau, num_samples).mean(0)
        nll.append(-p.gather(1, y_val[:, None]).clamp_min(1e-12).log().mean().item())
    return float(grid[min(range(len(grid)), key=nll.__getitem__)])

