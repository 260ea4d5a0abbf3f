"""MNIST and Fashion-MNIST, loaded offline from the repository's ``data/`` folder.

The IDX files are committed gzip-compressed in torchvision's layout
(``data/MNIST/raw/train-images-idx3-ubyte.gz``, ...). ``data/SHA256SUMS`` holds the
checksums of the *decompressed* files. The first load decompresses each file it needs
once into the git-ignored folder ``data/.unpacked/`` (same layout), checking it against
``SHA256SUMS``; later loads read and check that copy. A missing or corrupt file raises
one :class:`DatasetError` naming the file and how to fix it. ``download=True`` hands the
job to torchvision's own downloader when the local files are missing or corrupt.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch

DATA_ENV = "BDL_DATA_DIR"
REPO_DATA = Path(__file__).resolve().parent.parent / "data"
UNPACKED = ".unpacked"
# data set name -> torchvision class name, which is also the folder under the data root
DATASETS = {"mnist": "MNIST", "fashion": "FashionMNIST"}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]

# unpacked copies whose checksum this process has checked: (path, device, inode, size,
# mtime)
_verified: set[tuple] = set()


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
    """The data root: ``root`` if given, else ``$BDL_DATA_DIR``, else the repo's
    ``data/``."""
    return Path(root or os.environ.get(DATA_ENV) or REPO_DATA)


def unpacked_dir(root: str | Path | None = None) -> Path:
    """Where the decompressed copies of ``root``'s files live: ``<root>/.unpacked``."""
    return data_dir(root) / UNPACKED


def _checksums(root: Path) -> dict[str, str]:
    """``root/SHA256SUMS`` as {relative name of the decompressed file: sha256 hex}."""
    sums = root / "SHA256SUMS"
    if not sums.is_file():
        raise DatasetError(
            f"{sums} is missing. Restore the data folder with `git checkout -- data/`, "
            f"set {DATA_ENV} to a folder holding MNIST/ and FashionMNIST/, "
            "or pass download=True to fetch the files from the internet."
        )
    entries = (line.split(maxsplit=1) for line in sums.read_text().splitlines()
               if line.strip())
    return {name.strip().lstrip("*"): expected.lower() for expected, name in entries}


def _fix(path: Path) -> str:
    return (f"Restore it with `git checkout -- {path}` (or copy it from the original "
            "distribution), or pass download=True to fetch it from the internet.")


def _decompress(source: Path, expected: str) -> bytearray:
    """The decompressed bytes of ``source`` (a .gz file), checked against
    ``expected``."""
    if not source.is_file():
        raise DatasetError(f"Data file {source} is missing. {_fix(source)}")
    try:
        raw = gzip.decompress(source.read_bytes())
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DatasetError(
            f"Data file {source} is corrupt (not a valid gzip file: {err}). "
            f"{_fix(source)}") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected:
        raise DatasetError(
            f"Data file {source} is corrupt (sha256 of its decompressed bytes "
            f"{digest[:12]}..., expected {expected[:12]}...). {_fix(source)}"
        )
    return bytearray(raw)


def _write_atomically(target: Path, raw: bytearray, not_older_than_ns: int) -> None:
    """Write ``raw`` to a temporary file beside ``target`` and rename it into place, so
    that a concurrent reader sees either the old file or the whole new one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part",
                               dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(tmp, 0o644)
        if time.time_ns() < not_older_than_ns:  # a .gz dated in the future
            os.utime(tmp, ns=(not_older_than_ns, not_older_than_ns))
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _read_unpacked(target: Path, expected: str,
                   source_mtime_ns: int) -> bytearray | None:
    """The bytes of the unpacked copy ``target`` if it is at least as new as its .gz and
    matches ``expected``; ``None`` if it is missing, stale or damaged."""
    try:
        with open(target, "rb") as f:
            st = os.fstat(f.fileno())
            if st.st_mtime_ns < source_mtime_ns:
                return None
            raw = bytearray(st.st_size)
            if f.readinto(raw) != st.st_size:
                return None
    except OSError:
        return None
    key = (str(target), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
    if key not in _verified:
        if hashlib.sha256(raw).hexdigest() != expected:
            return None
        _verified.add(key)
    return raw


def _file_bytes(root: Path, name: str, sums: dict[str, str]) -> bytearray:
    """The checked decompressed bytes of ``root/<name>.gz``, decompressing it into
    ``root/.unpacked/<name>`` unless a checked copy is there already."""
    if name not in sums:
        raise DatasetError(
            f"{root / 'SHA256SUMS'} has no checksum for {name}. Restore it with "
            f"`git checkout -- {root / 'SHA256SUMS'}`.")
    source = root / f"{name}.gz"
    try:
        source_mtime = source.stat().st_mtime_ns
    except OSError:
        raise DatasetError(f"Data file {source} is missing. {_fix(source)}") from None
    target = root / UNPACKED / name
    raw = _read_unpacked(target, sums[name], source_mtime)
    if raw is None:
        raw = _decompress(source, sums[name])
        try:
            _write_atomically(target, raw, source_mtime)
        except OSError as err:
            warnings.warn(
                f"Could not keep a decompressed copy of {source} in {target.parent} "
                f"({err}); every load will decompress it again.", stacklevel=3)
    return raw


def _parse_idx(raw: bytearray, name: str, ndim: int) -> torch.Tensor:
    """An IDX file of unsigned bytes (big-endian magic 0x0000 08 ``ndim``, then ``ndim``
    big-endian uint32 sizes, then the data) as a uint8 tensor sharing ``raw``."""
    offset = 4 + 4 * ndim
    if len(raw) < offset or bytes(raw[:4]) != bytes([0, 0, 8, ndim]):
        raise DatasetError(
            f"{name} is not an IDX file of unsigned bytes with {ndim} dims.")
    dims = struct.unpack_from(f">{ndim}I", raw, 4)
    if len(raw) != offset + math.prod(dims):
        raise DatasetError(f"{name} holds {len(raw) - offset} values, its header says "
                           f"{math.prod(dims)}.")
    return torch.frombuffer(raw, dtype=torch.uint8, offset=offset).view(*dims)


def _split_files(folder: str, train: bool) -> tuple[str, str]:
    prefix = "train" if train else "t10k"
    return (f"{folder}/raw/{prefix}-images-idx3-ubyte",
            f"{folder}/raw/{prefix}-labels-idx1-ubyte")


def verify_checksums(root: str | Path | None = None,
                     names: list[str] | None = None) -> None:
    """Check the files listed in ``root/SHA256SUMS`` (all, or those starting with
    ``names``): decompress each ``<name>.gz`` in memory and compare the bytes with the
    listed sum.

    Raises :class:`DatasetError` on the first missing or corrupt file. Writes nothing.
    """
    root = data_dir(root)
    for name, expected in _checksums(root).items():
        if not names or any(name.startswith(n) for n in names):
            _decompress(root / f"{name}.gz", expected)


def load_images(name: str = "mnist", train: bool = True, root: str | Path | None = None,
                download: bool = False) -> ImageData:
    """Load MNIST (``name="mnist"``) or Fashion-MNIST (``name="fashion"``).

    Returns all images of the split as :class:`ImageData`. Nothing is downloaded unless
    ``download=True`` and the local files are missing or corrupt; then torchvision
    fetches and checks the files itself, into ``<root>/.unpacked``.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {sorted(DATASETS)}")
    root = data_dir(root)
    folder = DATASETS[name]
    try:
        sums = _checksums(root)
        image_file, label_file = _split_files(folder, train)
        images = _parse_idx(_file_bytes(root, image_file, sums), image_file, 3)
        labels = _parse_idx(_file_bytes(root, label_file, sums), label_file, 1)
    except DatasetError as err:
        if not download:
            raise
        warnings.warn(f"{err} Downloading {folder} with torchvision instead.",
                      stacklevel=2)
        from torchvision import datasets

        ds = getattr(datasets, folder)(root=str(root / UNPACKED), train=train,
                                       download=True)
        images, labels = ds.data, ds.targets
    return ImageData(images.reshape(len(images), -1).to(torch.float32).div_(255.0),
                     labels.to(torch.int64))


def train_val_split(data: ImageData, num_val: int, seed: int = 0) -> tuple[ImageData,
                                                                         ImageData]:
    """Split off a seeded random validation set of ``num_val`` images."""
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    return data.subset(perm[num_val:]), data.subset(perm[:num_val])
