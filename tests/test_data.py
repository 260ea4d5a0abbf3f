import shutil

import pytest
import torch

from bdl_src import data
from bdl_src.data import DatasetError, load_images, train_val_split, verify_checksums


def linked_copy(tmp_path):
    """A data root whose files are links to the real ones, so one can be damaged."""
    root = tmp_path / "data"
    for src in data.REPO_DATA.rglob("*"):
        if src.is_file() and src.name != "README.md":
            dst = root / src.relative_to(data.REPO_DATA)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src)
    return root


def test_mnist_test_split_shapes_and_range():
    d = load_images("mnist", train=False)
    assert d.images.shape == (10000, 784)
    assert d.images.dtype == torch.float32
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0
    assert sorted(d.labels.unique().tolist()) == list(range(10))


def test_fashion_loads_and_differs_from_mnist():
    fashion = load_images("fashion", train=False)
    mnist = load_images("mnist", train=False)
    assert fashion.images.shape == mnist.images.shape
    assert not torch.equal(fashion.images, mnist.images)


def test_checksums_of_shipped_data_hold():
    verify_checksums(data.REPO_DATA)


def test_corrupt_file_gives_clear_error(tmp_path):
    root = linked_copy(tmp_path)
    bad = root / "MNIST/raw/t10k-labels-idx1-ubyte"
    content = bad.read_bytes()
    bad.unlink()
    bad.write_bytes(content[:-10] + b"\x00" * 10)
    with pytest.raises(DatasetError) as err:
        load_images("mnist", train=False, root=root)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte" in message and "corrupt" in message
    assert "download=True" in message and "git checkout" in message


def test_missing_file_gives_clear_error_without_download(tmp_path, monkeypatch):
    root = linked_copy(tmp_path)
    (root / "FashionMNIST/raw/train-images-idx3-ubyte").unlink()

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", no_network)
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte is missing"):
        load_images("fashion", root=root)


def test_environment_variable_overrides_root(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="SHA256SUMS is missing"):
        load_images("mnist", train=False)


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="unknown data set"):
        load_images("cifar")


def test_train_val_split_is_disjoint_and_seeded():
    d = data.ImageData(torch.arange(100.0).reshape(100, 1), torch.arange(100))
    train, val = train_val_split(d, 20, seed=1)
    assert len(train) == 80 and len(val) == 20
    assert set(train.labels.tolist()).isdisjoint(val.labels.tolist())
    assert torch.equal(val.labels, train_val_split(d, 20, seed=1)[1].labels)


def test_copy_of_real_data_loads(tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(data.REPO_DATA / "MNIST", root / "MNIST")
    shutil.copy(data.REPO_DATA / "SHA256SUMS", root)
    d = load_images("mnist", train=False, root=root)
    assert len(d) == 10000
