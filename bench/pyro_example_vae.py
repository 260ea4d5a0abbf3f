"""Train Pyro's own VAE example on the book's data, for a wall-clock budget.

The book's chapter 3 sets its VAE beside Pyro's ``examples/vae/vae.py``; this script
is how that reference figure was measured. It imports the example's ``VAE`` class from
a checkout of Pyro's repository (not shipped here) and runs the example's training loop
at its defaults (z = 50, one hidden layer of 400 softplus units, Adam with lr 1e-3,
batches of 256, ``Trace_ELBO``) on grey-level Fashion-MNIST from ``data/``, then reports
the test loss the way the example does (``svi.evaluate_loss`` over the test set, per
image: a one-draw estimate of the negative ELBO).

    python bench/pyro_example_vae.py PYRO_CHECKOUT/examples/vae 60
"""

from __future__ import annotations

import argparse
import sys
import time
import types

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO
from pyro.optim import Adam
from torch.utils.data import DataLoader, TensorDataset

from bdl_src.data import load_images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("example_dir", help="examples/vae of a Pyro checkout")
    parser.add_argument("seconds", type=float, help="training budget (wall clock)")
    args = parser.parse_args()
    sys.modules.setdefault("visdom", types.ModuleType("visdom"))  # plots only
    sys.path.insert(0, args.example_dir)
    import vae as example  # Pyro's examples/vae/vae.py

    train = load_images("fashion", train=True).images
    test = load_images("fashion", train=False).images
    pyro.set_rng_seed(0)
    pyro.clear_param_store()
    loader = DataLoader(TensorDataset(train), batch_size=256, shuffle=True)
    model = example.VAE()
    svi = SVI(model.model, model.guide, Adam({"lr": 1.0e-3}), loss=Trace_ELBO())
    start, epochs = time.perf_counter(), 0
    while time.perf_counter() - start < args.seconds:
        for (x,) in loader:
            svi.step(x)
        epochs += 1
    seconds = time.perf_counter() - start
    with torch.no_grad():
        loss = sum(svi.evaluate_loss(x) for x in test.split(256)) / len(test)
    print(f"epochs {epochs}  training {seconds:.1f} s  test -ELBO {loss:.2f} nats")


if __name__ == "__main__":
    main()
