"""Chapter 4's labelled-only baselines, trained by plain supervised PyTorch on the
labelled images alone (compared with M1+M2 in book/ssvae.md):

- ``"pixels"``, the *labels-only MLP*: M2's classifier behind an M1-shaped trunk
  (784-500-500-50, then the classifier), trained from scratch on the pixels with
  dropout, weight decay and early stopping (what the labelled images alone can do);
- ``"m1"``, the *M1-code classifier*: M2's classifier alone, on the mean code of the
  trained, frozen M1 (what M1's unsupervised code adds, before M2 sees the unlabelled
  images).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bdl_src.data import ImageData
from bdl_src.m1 import NUM_PIXELS, M1Config
from bdl_src.ssvae import Classifier
from bdl_src.ssvae_data import NUM_CLASSES
from bdl_src.train import check_finite, cycle_batches, progress

NAMES = {"pixels": "labels-only MLP", "m1": "M1-code classifier"}


@dataclass(frozen=True)
class BaselineConfig:
    """Plain supervised training on the labelled images (the defaults are the book's,
    chosen on the validation images by ``bench/ssvae_select.py``)."""

    num_labels: int = 100
    draw: int = 0  # which random draw of the labelled images, as in SSVAEConfig
    features: str = "pixels"  # "pixels" or "m1" (see the module's docstring)
    num_steps: int = 1000  # Adam steps on mini-batches of labelled images
    batch_size: int = 100
    lr: float = 1e-3
    weight_decay: float = 1e-2  # AdamW's decoupled weight decay
    dropout: float = 0.5  # on the input and every hidden layer ("pixels" only)
    eval_every: int = 50  # steps between validation checks; the best check is kept
    m1: M1Config = field(default_factory=M1Config)
    hidden_dim: int = 300  # the classifier's hidden layer, as in SSVAEConfig
    num_val: int = 5000
    num_train: int | None = None
    seed: int = 0


class PixelClassifier(nn.Module):
    """x (..., 784) -> logits (..., 10): an M1-shaped trunk to a ``code_dim`` layer,
    then M2's classifier; dropout on the input and after every hidden ReLU."""

    def __init__(self, m1: M1Config, hidden_dim: int, dropout: float = 0.0):
        super().__init__()
        sizes = [NUM_PIXELS] + [m1.hidden_dim] * m1.num_layers
        layers: list[nn.Module] = [nn.Dropout(dropout)]
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [nn.Linear(n_in, n_out), nn.ReLU(), nn.Dropout(dropout)]
        self.trunk = nn.Sequential(*layers, nn.Linear(sizes[-1], m1.code_dim))
        self.classifier = Classifier(m1.code_dim, hidden_dim)

    def forward(self, xs):
        return self.classifier(self.trunk(xs))


def train_baseline(net: nn.Module, x: torch.Tensor, y: torch.Tensor, val: ImageData,
                   config: BaselineConfig) -> dict:
    """Cross-entropy training of ``net`` on ``(x, y)`` with early stopping: the weights
    with the best accuracy on ``val`` (inputs as ``x``, labels) are kept.

    Returns the steps at which ``val`` was checked, the accuracy there and the step
    whose weights ``net`` ends with.
    """
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    optim = torch.optim.AdamW(net.parameters(), lr=config.lr,
                              weight_decay=config.weight_decay)
    batches = cycle_batches(len(x), min(config.batch_size, len(x)), generator)
    best, history = None, {"steps": [], "val_accuracy": []}

    @torch.no_grad()
    def val_accuracy():
        net.eval()
        correct = (net(val.images).argmax(-1) == val.labels).float().mean().item()
        net.train()
        return correct

    net.train()
    for step in progress(range(1, config.num_steps + 1), desc="labelled only"):
        idx = next(batches).to(x.device)
        loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
        check_finite(loss.item(), "labelled only", step)
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % config.eval_every == 0:
            history["steps"].append(step)
            history["val_accuracy"].append(val_accuracy())
            if best is None or history["val_accuracy"][-1] > best[0]:
                best = (history["val_accuracy"][-1], step,
                        {k: v.clone() for k, v in net.state_dict().items()})
    net.load_state_dict(best[2])
    net.eval()
    history["best_step"] = best[1]
    return history


@torch.no_grad()
def predict(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, 10) of a trained baseline, in eval mode."""
    net.eval()
    return net(x).softmax(-1).reshape(-1, NUM_CLASSES)
