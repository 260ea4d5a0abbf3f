"""Chapter 4's data: MNIST with all but a few labels removed (shown in book/ssvae.md).

``split_data`` holds out validation images, then keeps ``num_labels`` labels of the
remaining training images (``keep_labels``: as many of each digit, drawn at random).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bdl_src.data import ImageData, load_images, train_val_split

NUM_CLASSES = 10


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
        """Every training image, labelled ones first: what M1 learns from."""
        return torch.cat([self.labelled.images, self.unlabelled.images])


def split_data(num_labels: int, num_val: int = 5000, num_train: int = 0, seed: int = 0,
               device=None) -> SplitData:
    """Hold out ``num_val`` training images, then keep ``num_labels`` labels of the rest
    (of the first ``num_train`` if > 0). ``device``: where the tensors go (the CPU if
    None)."""
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
