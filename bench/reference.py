"""A fixed reference workload, timed in the benchmark's own run, so that figures from
two machines can be compared as ratios: float32 matrix products and one small SVI epoch.

    .venv/bin/python bench/reference.py    # prints the two times and their sum
"""

from __future__ import annotations

import time

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import SVI, TraceMeanField_ELBO
from torch import nn


def matmul_seconds(size: int = 1024, repeats: int = 40) -> float:
    """Seconds for ``repeats`` float32 products of two ``size`` x ``size`` matrices."""
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(size, size, generator=gen),
            torch.randn(size, size, generator=gen))
    a @ b  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return time.perf_counter() - start


class TinyVAE(nn.Module):
    """A 784-256-16 VAE: the shape of the book's networks, a fraction of their size."""

    def __init__(self):
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 32))
        self.dec = nn.Sequential(nn.Linear(16, 256), nn.ReLU(), nn.Linear(256, 784))

    def model(self, x):
        pyro.module("dec", self.dec)
        with pyro.plate("data", len(x)):
            z = pyro.sample("z", dist.Normal(x.new_zeros(len(x), 16), 1.0).to_event(1))
            pyro.sample("obs", dist.Bernoulli(logits=self.dec(z), validate_args=False)
                        .to_event(1), obs=x)

    def guide(self, x):
        pyro.module("enc", self.enc)
        with pyro.plate("data", len(x)):
            loc, raw = self.enc(x).chunk(2, -1)
            pyro.sample("z", dist.Normal(loc, nn.functional.softplus(raw)).to_event(1))


def svi_epoch_seconds(num_images: int = 5000, batch_size: int = 128) -> float:
    """Seconds for one SVI epoch of ``TinyVAE`` over random grey images."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    x = torch.rand(num_images, 784)
    vae = TinyVAE()
    svi = SVI(vae.model, vae.guide, pyro.optim.Adam({"lr": 1e-3}),
              TraceMeanField_ELBO())
    svi.step(x[:batch_size])  # warm-up: creates the parameters
    start = time.perf_counter()
    for first in range(0, num_images, batch_size):
        svi.step(x[first:first + batch_size])
    seconds = time.perf_counter() - start
    pyro.clear_param_store()
    return seconds


def measure() -> dict:
    """Both parts and their sum, ``reference_seconds``: the unit of the ratios."""
    result = {"matmul_seconds": matmul_seconds(),
              "svi_epoch_seconds": svi_epoch_seconds()}
    result["reference_seconds"] = result["matmul_seconds"] + result["svi_epoch_seconds"]
    return result


if __name__ == "__main__":
    for key, value in measure().items():
        print(f"{key:<20} {value:.2f}")
