"""Chapter 4's baselines: the SS-VAE's classifier trained on the labelled images alone,
by plain supervised PyTorch (compared with the SS-VAE in book/ssvae.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from bdl_src.data import ImageData
from bdl_src.m1 import M1, M1Config
from bdl_src.ssvae import Classifier
from bdl_src.train import check_finite, cycle_batches, progress


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
        return (net(val.images).argmax(-1) == val.labels).float().mean().item()

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
    history["best_step"] = best[1]
    return history
