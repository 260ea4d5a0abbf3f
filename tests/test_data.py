import gzip
import hashlib
import os
import shutil
import threading

import pytest
import torch
from torchvision.datasets.mnist import read_image_file, read_label_file

from bdl_src import data
from bdl_src.data import DatasetError, load_images, train_val_split, verify_checksums

SHIPPED = sorted(p.relative_to(data.REPO_DATA).as_posix()
                 for p in data.REPO_DATA.glob("*/raw/*.gz"))


def linked_copy(tmp_path):
    """A data root whose files are links to the real ones, so one can be damaged."""
    root = tmp_path / "data"
    for name in [*SHIPPED, "SHA256SUMS"]:
        dst = root / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(data.REPO_DATA / name)
    return root


def replace(path, content):
    """Replace the link ``path`` by a file holding ``content`` (the repo's file
    stays)."""
    path.unlink()
    path.write_bytes(content)


def reference(root, name, train, tmp_path):
    """Images and labels as today's path gave them: decompress with gzip, parse with
    torchvision's own IDX reader, scale to [0, 1]."""
    folder, prefix = data.DATASETS[name], "train" if train else "t10k"
    files = {}
    for kind in ("images-idx3", "labels-idx1"):
        raw = tmp_path / f"{prefix}-{kind}-ubyte"
        raw.write_bytes(gzip.decompress(
            (root / folder / "raw" / f"{raw.name}.gz").read_bytes()))
        files[kind] = str(raw)
    images = read_image_file(files["images-idx3"])
    return (images.reshape(len(images), -1).to(torch.float32).div_(255.0),
            read_label_file(files["labels-idx1"]).to(torch.int64))


def test_mnist_test_split_shapes_and_range():
    d = load_images("mnist", train=False)
    assert d.images.shape == (10000, 784)
    assert d.images.dtype == torch.float32 and d.labels.dtype == torch.int64
    assert 0.0 <= d.images.min() and d.images.max() <= 1.0
    assert sorted(d.labels.unique().tolist()) == list(range(10))


def test_fashion_loads_and_differs_from_mnist():
    fashion = load_images("fashion", train=False)
    mnist = load_images("mnist", train=False)
    assert fashion.images.shape == mnist.images.shape
    assert not torch.equal(fashion.images, mnist.images)


def test_shipped_data_is_eight_gzip_files_with_checksums():
    sums = (data.REPO_DATA / "SHA256SUMS").read_text().split()[1::2]
    assert [f"{name}.gz" for name in sorted(sums)] == SHIPPED and len(SHIPPED) == 8
    # no raw IDX files beside them
    assert not list(data.REPO_DATA.glob("*/raw/*-ubyte"))
    assert sum(os.path.getsize(data.REPO_DATA / name) for name in SHIPPED) < 45e6


def test_checksums_of_shipped_data_hold():
    verify_checksums(data.REPO_DATA)


@pytest.mark.parametrize("name,train", [("mnist", False), ("fashion", False),
                                        ("mnist", True), ("fashion", True)])
def test_images_and_labels_equal_a_direct_decompress_and_parse(name, train, tmp_path):
    d = load_images(name, train=train, root=linked_copy(tmp_path))
    images, labels = reference(data.REPO_DATA, name, train, tmp_path)
    assert d.images.dtype == torch.float32 and d.labels.dtype == torch.int64
    assert torch.equal(d.images, images) and torch.equal(d.labels, labels)


def test_unpacks_once_into_the_roots_unpacked_folder_and_reuses_it(tmp_path,
                                                                   monkeypatch):
    root = linked_copy(tmp_path)
    first = load_images("mnist", train=False, root=root)
    name = "MNIST/raw/t10k-images-idx3-ubyte"
    unpacked = root / ".unpacked" / name
    expected = dict(line.split()[::-1] for line in (root / "SHA256SUMS").open())[name]
    assert hashlib.sha256(unpacked.read_bytes()).hexdigest() == expected
    assert not list((root / ".unpacked").rglob("*.part"))

    def no_decompress(*args, **kwargs):
        raise AssertionError("decompressed again although the unpacked copy is good")

    monkeypatch.setattr(gzip, "decompress", no_decompress)
    data._verified.clear()  # as in a new process
    again = load_images("mnist", train=False, root=root)
    assert (torch.equal(first.images, again.images)
            and torch.equal(first.labels, again.labels))


def test_damaged_unpacked_copy_is_rebuilt_from_the_gz(tmp_path):
    root = linked_copy(tmp_path)
    good = load_images("fashion", train=False, root=root)
    unpacked = root / ".unpacked/FashionMNIST/raw/t10k-images-idx3-ubyte"
    unpacked.write_bytes(unpacked.read_bytes()[:-5] + b"\xff" * 5)
    d = load_images("fashion", train=False, root=root)
    assert torch.equal(d.images, good.images)
    assert unpacked.read_bytes()[-5:] != b"\xff" * 5


def test_corrupt_contents_give_clear_error(tmp_path):
    root = linked_copy(tmp_path)
    bad = root / "MNIST/raw/t10k-labels-idx1-ubyte.gz"
    content = gzip.decompress(bad.read_bytes())
    replace(bad, gzip.compress(content[:-10] + b"\x00" * 10))  # valid gzip, wrong bytes
    with pytest.raises(DatasetError) as err:
        load_images("mnist", train=False, root=root)
    message = str(err.value)
    assert "t10k-labels-idx1-ubyte.gz" in message and "corrupt" in message
    assert "download=True" in message and f"git checkout -- {bad}" in message
    with pytest.raises(DatasetError, match="t10k-labels-idx1-ubyte.gz is corrupt"):
        verify_checksums(root)


@pytest.mark.parametrize("damage", [
    lambda gz: gz[: len(gz) // 2],                                # truncated: EOFError
    lambda gz: b"not gzip at all" + gz,                           # bad header
    lambda gz: (gz[:1000] + bytes(b ^ 0xFF for b in gz[1000:1100])
                + gz[1100:]),                                     # bad stream
    lambda gz: gz[:-8] + bytes(b ^ 0xFF for b in gz[-8:-4]) + gz[-4:],  # bad CRC
], ids=["truncated", "header", "stream", "crc"])
def test_corrupt_gz_gives_clear_error(tmp_path, damage):
    root = linked_copy(tmp_path)
    bad = root / "FashionMNIST/raw/t10k-images-idx3-ubyte.gz"
    replace(bad, damage(bad.read_bytes()))
    with pytest.raises(DatasetError) as err:
        load_images("fashion", train=False, root=root)
    message = str(err.value)
    assert "t10k-images-idx3-ubyte.gz is corrupt" in message
    assert "git checkout" in message and "download=True" in message
    assert not (root / ".unpacked/FashionMNIST/raw/t10k-images-idx3-ubyte").exists()


def test_gz_changed_after_unpacking_is_checked_again(tmp_path):
    root = linked_copy(tmp_path)
    load_images("mnist", train=False, root=root)
    bad = root / "MNIST/raw/t10k-images-idx3-ubyte.gz"
    replace(bad, bad.read_bytes()[:5000])
    later = ((root / ".unpacked/MNIST/raw/t10k-images-idx3-ubyte").stat().st_mtime_ns
             + 10**9)
    os.utime(bad, ns=(later, later))
    with pytest.raises(DatasetError, match="t10k-images-idx3-ubyte.gz is corrupt"):
        load_images("mnist", train=False, root=root)


def test_missing_file_gives_clear_error_without_download(tmp_path, monkeypatch):
    root = linked_copy(tmp_path)
    (root / "FashionMNIST/raw/train-images-idx3-ubyte.gz").unlink()

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", no_network)
    with pytest.raises(DatasetError,
                       match="train-images-idx3-ubyte.gz is missing") as err:
        load_images("fashion", root=root)
    assert "git checkout" in str(err.value)


def test_download_true_uses_good_local_files(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr("torchvision.datasets.utils.download_url", no_network)
    d = load_images("mnist", train=False, root=linked_copy(tmp_path), download=True)
    assert len(d) == 10000


def test_download_true_hands_a_missing_file_to_torchvision(tmp_path, monkeypatch):
    root = linked_copy(tmp_path)
    (root / "MNIST/raw/t10k-images-idx3-ubyte.gz").unlink()
    fetched = []

    def fake_download(url, download_root, filename, md5):  # "downloads" the repo's copy
        fetched.append(filename)
        source = data.REPO_DATA / "MNIST/raw" / filename
        with open(os.path.join(download_root, filename[:-3]), "wb") as f:
            f.write(gzip.decompress(source.read_bytes()))

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive",
                        fake_download)
    with pytest.warns(UserWarning,
                      match="is missing.*Downloading MNIST with torchvision"):
        d = load_images("mnist", train=False, root=root, download=True)
    assert "t10k-images-idx3-ubyte.gz" in fetched
    assert (root / ".unpacked/MNIST/raw/t10k-images-idx3-ubyte").is_file()
    assert torch.equal(d.images, reference(data.REPO_DATA, "mnist", False, tmp_path)[0])


def test_unwritable_unpack_folder_still_loads(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(data, "_write_atomically", read_only)
    with pytest.warns(UserWarning, match="Could not keep a decompressed copy"):
        d = load_images("mnist", train=False, root=linked_copy(tmp_path))
    assert len(d) == 10000


def test_concurrent_first_loads_agree(tmp_path):
    root = linked_copy(tmp_path)
    start, results, errors = threading.Barrier(4), [], []

    def load():
        start.wait()
        try:
            results.append(load_images("fashion", train=False, root=root))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 4
    assert all(torch.equal(r.images, results[0].images) for r in results)
    assert not list((root / ".unpacked").rglob("*.part"))
    verify_checksums(root)


def test_environment_variable_overrides_root(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="SHA256SUMS is missing"):
        load_images("mnist", train=False)


def test_environment_variable_points_at_a_copy(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, str(linked_copy(tmp_path)))
    assert len(load_images("mnist", train=False)) == 10000
    assert (tmp_path / "data/.unpacked/MNIST/raw/t10k-labels-idx1-ubyte").is_file()


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
