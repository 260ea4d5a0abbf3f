"""Train Pyro's own semi-supervised VAE example on the book's MNIST, for a time budget.

The book's chapter 4 sets its M2 beside Pyro's ``examples/vae/ss_vae_M2.py``; this
script is how that reference figure was measured. It imports the example's ``SSVAE``
class (and its ``get_accuracy``) from a checkout of Pyro's repository (not shipped
here) and repeats the example's ``run_inference_for_epoch`` loop: batches of 200, one
supervised batch at every ``i % 16 == 1`` (16 = int(50000 / 3000)) until the 15
labelled batches are used up, each batch a step of ``TraceEnum_ELBO`` with the guide
under ``config_enumerate(guide, "parallel", expand=True)`` and then of the auxiliary
classification loss (``Trace_ELBO`` on ``model_classify``), both sharing one Adam.

The settings are those of the example's documented run (its ``EXAMPLE_RUN`` string,
also the argparse help): ``--seed 0 --aux-loss -alm 46 -enum parallel -sup 3000
-zd 50 -hl 500 -lr 0.00042 -b1 0.95 -bs 200``, on the CPU instead of ``--cuda``, and
for a wall-clock budget instead of ``-n`` epochs. Argparse's own defaults are the same
but for ``-b1`` (0.9) and ``--aux-loss`` (off); the tutorial (ss-vae.ipynb) reports
its 95.8 % test accuracy (3,000 labels) with the auxiliary loss on.

Data as in the example, but the book's MNIST from ``data/`` (nothing is downloaded):
the first 50,000 training images to train on, 3,000 of them labelled (300 of each
digit, drawn with ``keep_labels``, seed 0), the last 10,000 held out as the example's
validation set (unused here), the 10,000 test images to report on. After every epoch
the script prints the training time so far (evaluation not counted) and the test
accuracy of the example's classifier; at the end, a JSON list of (seconds, accuracy).

    python bench/pyro_example_ssvae.py PYRO_CHECKOUT/examples/vae 600 [--threads 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types

import pyro
import torch
from pyro.infer import SVI, Trace_ELBO, TraceEnum_ELBO, config_enumerate
from pyro.optim import Adam
from torch.utils.data import DataLoader, TensorDataset

from bdl_src.data import load_images
from bdl_src.ssvae_data import keep_labels

# The example's documented run (EXAMPLE_RUN in ss_vae_M2.py).
SEED, SUP_NUM, AUX_LOSS_MULTIPLIER, ENUM = 0, 3000, 46.0, "parallel"
Z_DIM, HIDDEN_LAYERS, LEARNING_RATE, BETA_1, BATCH_SIZE = 50, [500], 0.00042, 0.95, 200
TRAIN_SIZE, VALIDATION_SIZE = 50_000, 10_000  # MNISTCached's split


def one_hot(labels: torch.Tensor) -> torch.Tensor:
    """The example's label format (its ``fn_y_mnist``): one-hot float rows."""
    return torch.zeros(len(labels), 10).scatter_(1, labels.view(-1, 1), 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("example_dir", help="examples/vae of a Pyro checkout")
    parser.add_argument("seconds", type=float, help="training budget (wall clock)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    visdom = sys.modules.setdefault("visdom", types.ModuleType("visdom"))  # plots only
    visdom.Visdom = getattr(visdom, "Visdom", None)  # ss_vae_M2 imports the name
    sys.path.insert(0, args.example_dir)
    import ss_vae_M2 as example  # Pyro's examples/vae/ss_vae_M2.py

    train = load_images("mnist", train=True)
    test = load_images("mnist", train=False)
    assert len(train) == TRAIN_SIZE + VALIDATION_SIZE
    images, labels = train.images[:TRAIN_SIZE], train.labels[:TRAIN_SIZE]
    sup = keep_labels(labels, SUP_NUM, seed=0)
    unsup = torch.ones(TRAIN_SIZE, dtype=torch.bool)
    unsup[sup] = False

    pyro.set_rng_seed(SEED)
    pyro.clear_param_store()
    loaders = {
        "sup": DataLoader(TensorDataset(images[sup], one_hot(labels[sup])),
                          batch_size=BATCH_SIZE, shuffle=True),
        # the example hides these labels (NaN) and never passes them on
        "unsup": DataLoader(TensorDataset(images[unsup], labels[unsup]),
                            batch_size=BATCH_SIZE, shuffle=True),
    }
    test_loader = DataLoader(TensorDataset(test.images, one_hot(test.labels)),
                             batch_size=BATCH_SIZE, shuffle=True)
    periodic_interval_batches = int(TRAIN_SIZE / (1.0 * SUP_NUM))

    ss_vae = example.SSVAE(z_dim=Z_DIM, hidden_layers=HIDDEN_LAYERS, use_cuda=False,
                           config_enum=ENUM, aux_loss_multiplier=AUX_LOSS_MULTIPLIER)
    optimizer = Adam({"lr": LEARNING_RATE, "betas": (BETA_1, 0.999)})
    guide = config_enumerate(ss_vae.guide, ENUM, expand=True)
    elbo = TraceEnum_ELBO(max_plate_nesting=1, strict_enumeration_warning=False)
    losses = [SVI(ss_vae.model, guide, optimizer, loss=elbo),
              SVI(ss_vae.model_classify, ss_vae.guide_classify, optimizer,
                  loss=Trace_ELBO())]

    history, seconds, epoch = [], 0.0, 0
    while seconds < args.seconds:
        start = time.perf_counter()
        example.run_inference_for_epoch(loaders, losses, periodic_interval_batches)
        seconds += time.perf_counter() - start
        epoch += 1
        with torch.no_grad():
            accuracy = example.get_accuracy(test_loader, ss_vae.classifier, BATCH_SIZE)
        history.append((round(seconds, 2), accuracy))
        print(f"epoch {epoch}  seconds {seconds:.1f}  test_accuracy {accuracy:.4f}",
              flush=True)
    print(json.dumps(history))


if __name__ == "__main__":
    main()
