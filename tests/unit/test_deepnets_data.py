"""reference_runs.data: tiny files in the real on-disk formats (torchvision's layout), a
malicious pickle, missing files, failed downloads, and training on the files end to end."""

import gzip
import os
import pickle
import struct
import sys

import numpy as np
import pytest

from reference_runs import data
from scalingfit.errors import DataError


@pytest.fixture
def torchvision():
    """MNIST and CIFAR go through torchvision (the torch extra)."""
    return pytest.importorskip("torchvision")


class Py2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 did (BINSTRING), as the CIFAR files were written."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _binstring(self, obj):
        raw = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(raw) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        self.memoize(obj)

    dispatch[str] = _binstring
    dispatch[bytes] = _binstring


def write_cifar_batch(path, images, labels, label_key=b"labels"):
    """A CIFAR python batch as distributed: protocol 2, numpy.core.multiarray globals."""
    batch = {b"batch_label": b"synthetic batch", label_key: [int(v) for v in labels],
             b"data": images.reshape(len(images), -1),
             b"filenames": [b"img_%d.png" % i for i in range(len(images))]}
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(batch)
    raw = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(raw)


def random_images(rng, n):
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)


def test_cifar10_reads_the_real_batch_format(tmp_path, torchvision):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images, labels = random_images(rng, 4), rng.integers(0, 10, 4)
        write_cifar_batch(folder / name, images, labels)
        written[name] = (images, labels)
    loaded = data.load("cifar10", tmp_path)
    train_images = np.concatenate([written[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(loaded.train_x, train_images)
    np.testing.assert_array_equal(loaded.test_x, written["test_batch"][0])
    np.testing.assert_array_equal(loaded.test_y, written["test_batch"][1])
    assert loaded.train_x.shape == (20, 3, 32, 32) and loaded.num_classes == 10
    assert loaded.mean == pytest.approx(tuple((train_images / 255).mean(axis=(0, 2, 3))))


def test_cifar100_uses_fine_labels(tmp_path, torchvision):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        write_cifar_batch(folder / name, random_images(rng, 3), [97, 3, 55], b"fine_labels")
    loaded = data.load("cifar100", tmp_path)
    assert loaded.num_classes == 100 and loaded.train_y.tolist() == [97, 3, 55]


def test_a_python3_pickle_of_a_batch_also_loads(tmp_path):
    images = random_images(np.random.default_rng(2), 2)
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({b"data": images.reshape(2, -1), b"labels": [1, 2]},
                                  protocol=2))
    x, y = data.read_cifar_batch(path)
    np.testing.assert_array_equal(x, images)


class Exploit:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


@pytest.mark.parametrize("payload", ["data", "labels", "whole"])
def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path, torchvision, payload):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    batch = {b"data": random_images(np.random.default_rng(6), 1).reshape(1, -1),
             b"labels": [0]}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            if payload == "whole":
                pickle.dump(Exploit(marker), f, protocol=2)
            else:
                pickle.dump({**batch, payload.encode(): Exploit(marker)}, f, protocol=2)
    with pytest.raises(DataError, match="refused to load: its pickle calls "
                                        "'posix.system'.*nothing in it was run") as err:
        data.load("cifar10", tmp_path)
    assert "data_batch_1" in str(err.value) and "\n" not in str(err.value)
    assert not marker.exists()


def test_the_same_file_would_run_code_under_plain_pickle(tmp_path):
    """The check above is not vacuous: pickle.load, as torchvision uses it, runs the payload."""
    marker = tmp_path / "pwned"
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Exploit(marker)}, protocol=2))
    with open(path, "rb") as f:
        pickle.load(f, encoding="latin1")
    assert marker.exists()


def test_missing_cifar_files_are_named(tmp_path, torchvision):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError) as err:
        data.load("cifar10", tmp_path)
    message = str(err.value)
    assert "data_batch_1" in message and "test_batch" in message and "--download" in message


def write_idx(path, array, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape)
    raw = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        raw = gzip.compress(raw)
    path.write_bytes(raw)


MNIST_STEMS = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
               "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def write_mnist(root, rng, n_train=5, n_test=3, compress=False):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {"train_x": rng.integers(0, 256, (n_train, 28, 28)),
              "train_y": rng.integers(0, 10, n_train),
              "test_x": rng.integers(0, 256, (n_test, 28, 28)),
              "test_y": rng.integers(0, 10, n_test)}
    for key, stem in MNIST_STEMS.items():
        write_idx(raw / stem, arrays[key], compress)
    return arrays


def test_mnist_reads_idx_files_through_torchvision(tmp_path, torchvision):
    arrays = write_mnist(tmp_path, np.random.default_rng(3))
    loaded = data.load("mnist", tmp_path)
    np.testing.assert_array_equal(loaded.train_x[:, 0], arrays["train_x"])
    np.testing.assert_array_equal(loaded.test_y, arrays["test_y"])
    assert loaded.train_x.dtype == np.uint8 and loaded.train_y.dtype == np.int64
    assert loaded.shape == (1, 28, 28) and loaded.scale == 255


def test_gz_files_alone_are_missing_files(tmp_path, torchvision):
    # torchvision reads the unpacked files; --download would unpack official .gz files
    write_mnist(tmp_path, np.random.default_rng(4), compress=True)
    with pytest.raises(DataError, match="missing train-images-idx3-ubyte.*--download"):
        data.load("mnist", tmp_path)


def test_a_truncated_idx_file_is_a_one_line_error(tmp_path, torchvision):
    write_mnist(tmp_path, np.random.default_rng(5))
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="not readable as MNIST IDX files") as err:
        data.load("mnist", tmp_path)
    assert "\n" not in str(err.value)


def test_missing_mnist_files_are_named(tmp_path, torchvision):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"
                                        ".*MNIST/raw.*--download"):
        data.load("mnist", tmp_path)


def test_without_torchvision_the_message_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'scalingfit\[torch\]'"):
        data.load("cifar10", tmp_path)


@pytest.mark.parametrize("name", ["mnist", "cifar10", "cifar100"])
def test_a_failed_download_is_a_one_line_error(tmp_path, monkeypatch, torchvision, name):
    # a real connection that fails at once: nothing listens on the discard port
    datasets = torchvision.datasets
    if name == "mnist":
        monkeypatch.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    else:
        dataset = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
        monkeypatch.setattr(dataset, "url", "http://127.0.0.1:9/archive.tar.gz")
    with pytest.raises(DataError, match="downloading (MNIST|CIFAR-10+) into .* failed") as err:
        data.load(name, tmp_path, download=True)
    assert "\n" not in str(err.value) and "Fix: check the network" in str(err.value)


def test_digits_is_bundled_and_split_fixed():
    pytest.importorskip("sklearn")
    loaded = data.load("digits")
    assert loaded.train_x.shape == (1297, 1, 8, 8) and loaded.test_x.shape == (500, 1, 8, 8)
    assert loaded.train_x.max() == 16 and loaded.scale == 16
    again = data.load("digits")
    np.testing.assert_array_equal(loaded.test_y, again.test_y)


def test_train_subset_is_drawn_by_seed():
    a, b = data.draw_train_subset(100, 10, 0), data.draw_train_subset(100, 10, 0)
    c = data.draw_train_subset(100, 10, 1)
    np.testing.assert_array_equal(a, b)
    assert len(set(a)) == 10 and not np.array_equal(a, c)
    with pytest.raises(DataError, match="between 1 and 100"):
        data.draw_train_subset(100, 101, 0)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_train_runs_on_the_files_end_to_end(tmp_path, torchvision, name):
    from reference_runs.train import resolve_config, train

    rng = np.random.default_rng(7)
    if name == "mnist":
        write_mnist(tmp_path, rng, n_train=24, n_test=10)
    else:
        folder = tmp_path / "cifar-10-batches-py"
        folder.mkdir()
        for batch in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            write_cifar_batch(folder / batch, random_images(rng, 5), rng.integers(0, 10, 5))
    config = resolve_config(overrides={
        "arch": "cnn", "dataset": name, "data_root": str(tmp_path), "train_size": 16,
        "seeds": [0, 1], "epochs": 2, "batch_size": 8, "device": "cpu",
        "model": {"channels": [4], "hidden": [8]}, "out": str(tmp_path / "run.csv")})
    table = train(config, log=lambda line: None)
    assert len(table) == 2 * 3 and (table["dataset"] == name).all()
    assert (table["n_test"] == (10 if name == "mnist" else 5)).all()
    assert table.filter(like="lognorm_").notna().all().all()
