"""MNIST and Fashion-MNIST, loaded offline from the repository's ``data/`` folder.

The raw IDX files are committed in torchvision's layout (``data/MNIST/raw/...``), so
``torchvision.datasets`` reads them without a download. Before the first load in a process
every file is checked against ``data/SHA256SUMS``; a missing or corrupt file raises one
:class:`DatasetError` naming the file and how to fix it. ``download=True`` hands the job to
torchvision's own downloader for readers who have internet.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets

DATA_ENV = "BDL_DATA_DIR"
REPO_DATA = Path(__file__).resolve().parent.parent / "data"
DATASETS = {"mnist": datasets.MNIST, "fashion": datasets.FashionMNIST}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

_verified: set[Path] = set()


class DatasetError(RuntimeError):
    """A data file is missing or does not match its checksum."""


@dataclass(frozen=True)
class ImageData:
    """Images as a float tensor ``(N, 784)`` in [0, 1] and labels as ``(N,)`` int64."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> ImageData:
        return ImageData(self.images[index], self.labels[index])


def data_dir(root: str | Path | None = None) -> Path:
    """The data root: ``root`` if given, else ``$BDL_DATA_DIR``, else the repo's ``data/``."""
    return Path(root or os.environ.get(DATA_ENV) or REPO_DATA)


def verify_checksums(root: Path, names: list[str] | None = None) -> None:
    """Check files listed in ``root/SHA256SUMS`` (all, or those starting with ``names``).

    Raises :class:`DatasetError` on the first missing or corrupt file.
    """
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        raise DatasetError(
            f"{sums} is missing. Restore the data folder with `git checkout -- data/`, "
            f"set {DATA_ENV} to a folder holding MNIST/ and FashionMNIST/, "
            "or pass download=True to fetch the files from the internet."
        )
    for line in sums.read_text().splitlines():
        expected, name = line.split()
        if names and not any(name.startswith(n) for n in names):
            continue
        path = root / name
        fix = (f"Restore it with `git checkout -- {path}` (or copy it from the original "
               "distribution), or pass download=True to fetch it from the internet.")
        if not path.is_file():
            raise DatasetError(f"Data file {path} is missing. {fix}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != expected:
            raise DatasetError(
                f"Data file {path} is corrupt (sha256 {digest[:12]}..., "
                f"expected {expected[:12]}...). {fix}"
            )


def load_images(name: str = "mnist", train: bool = True, root: str | Path | None = None,
                download: bool = False) -> ImageData:
    """Load MNIST (``name="mnist"``) or Fashion-MNIST (``name="fashion"``).

    Returns all images of the split as :class:`ImageData`. Nothing is downloaded unless
    ``download=True``; then torchvision fetches and checks the files itself.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    root = data_dir(root)
    cls = DATASETS[name]
    if not download:
        folder = cls.__name__
        key = root / folder
        if key not in _verified:
            verify_checksums(root, [f"{folder}/"])
            _verified.add(key)
    ds = cls(root=str(root), train=train, download=download)
    images = ds.data.reshape(len(ds.data), -1).to(torch.float32).div_(255.0)
    return ImageData(images, ds.targets.to(torch.int64))


def train_val_split(data: ImageData, num_val: int, seed: int = 0) -> tuple[ImageData,
                                                                         ImageData]:
    """Split off a seeded random validation set of ``num_val`` images."""
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[num_val:]), data.subset(perm[:num_val])
