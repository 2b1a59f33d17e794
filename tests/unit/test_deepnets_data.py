"""reference_runs.data: tiny files in the real on-disk formats, and a malicious pickle."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from reference_runs import data
from scalingfit.errors import DataError


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


def test_cifar10_reads_the_real_batch_format(tmp_path):
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


def test_cifar100_uses_fine_labels(tmp_path):
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


def test_a_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": Exploit(marker), b"labels": [0]}, f, protocol=2)
    with pytest.raises(DataError, match="refusing to load 'posix.system'|refusing to load"):
        data.load("cifar10", tmp_path)
    assert not marker.exists()


def test_missing_cifar_files_are_named(tmp_path):
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


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
def test_mnist_reads_idx_files(tmp_path, compress):
    rng = np.random.default_rng(3)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    arrays = {"train_x": rng.integers(0, 256, (5, 28, 28)), "train_y": rng.integers(0, 10, 5),
              "test_x": rng.integers(0, 256, (3, 28, 28)), "test_y": rng.integers(0, 10, 3)}
    for key, stem in data.MNIST_FILES.items():
        write_idx(raw / stem, arrays[key], compress)
    loaded = data.load("mnist", tmp_path)
    np.testing.assert_array_equal(loaded.train_x[:, 0], arrays["train_x"])
    np.testing.assert_array_equal(loaded.test_y, arrays["test_y"])
    assert loaded.shape == (1, 28, 28) and loaded.scale == 255


def test_a_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, np.zeros((4, 28, 28)))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="truncated"):
        data.read_idx(path)


def test_missing_mnist_files_are_named(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*t10k-labels-idx1-ubyte"):
        data.load("mnist", tmp_path)


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
