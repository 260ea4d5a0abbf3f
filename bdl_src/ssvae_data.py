"""Chapter 4's data: MNIST with all but a few labels removed (shown in book/ssvae.md).

``split_data`` holds out validation images, then keeps ``num_labels`` labels of the
remaining training images (``keep_labels``: as many of each digit, drawn at random).
``encode`` turns every image into M1's code once: what M2 then learns from.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from bdl_src.data import ImageData, load_images, train_val_split
from bdl_src.m1 import M1

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


def split_data(num_labels: int, num_val: int = 5000, num_train: int | None = None,
               seed: int = 0, device=None, draw: int = 0) -> SplitData:
    """Hold out ``num_val`` training images (the split drawn with ``seed``), then keep
    ``num_labels`` labels of the rest (of the first ``num_train`` if given): draw number
    ``draw`` of the labelled images for this ``seed``. ``device``: where the tensors go
    (the CPU if None)."""
    train_data, val = train_val_split(load_images("mnist", train=True), num_val,
                                      seed=seed)
    if num_train:
        train_data = train_data.subset(slice(0, num_train))
    keep = keep_labels(train_data.labels, num_labels, seed=1000 * seed + draw)
    mask = torch.ones(len(train_data), dtype=torch.bool)
    mask[keep] = False
    parts = [train_data.subset(keep), train_data.subset(mask), val,
             load_images("mnist", train=False)]
    if device is not None:
        parts = [ImageData(p.images.to(device), p.labels.to(device)) for p in parts]
    return SplitData(*parts)


@dataclass(frozen=True)
class CodeSplit:
    """M1's q(code | x) of a set of images: its mean and scale (N, code_dim), and the
    images' labels (N,)."""

    loc: torch.Tensor
    scale: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.loc)

    def draw(self, generator: torch.Generator, index=None) -> torch.Tensor:
        """One code of every image (or of the images ``index`` picks), drawn from
        q(code | x): loc + scale * noise."""
        loc, scale = (self.loc, self.scale) if index is None else \
            (self.loc[index], self.scale[index])
        noise = torch.randn(loc.shape, generator=generator).to(loc.device)
        return loc + scale * noise


@dataclass(frozen=True)
class CodeData:
    """The parts of a ``SplitData``, each encoded by M1: M2's data."""

    labelled: CodeSplit
    unlabelled: CodeSplit
    val: CodeSplit
    test: CodeSplit


@torch.no_grad()
def encode(m1: M1, data: SplitData, batch_size: int = 10_000) -> CodeData:
    """Every image of ``data`` through M1's encoder, once (M1 is fixed from now on)."""

    def codes(part: ImageData) -> CodeSplit:
        loc, scale = zip(*(m1.encode(part.images[i:i + batch_size])
                           for i in range(0, len(part), batch_size)))
        return CodeSplit(torch.cat(loc), torch.cat(scale), part.labels)

    return CodeData(*(codes(part) for part in
                      (data.labelled, data.unlabelled, data.val, data.test)))
