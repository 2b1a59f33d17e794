"""Image datasets from local files, held whole in memory (and then on the device).

- ``digits``: scikit-learn's bundled 8×8 digits (1,797 images, offline). It has no
  official test split: a fixed permutation (seed 0) keeps 1,297 for training, 500 for test.
- ``mnist``: torchvision's folder layout, ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,
  labels-idx1}-ubyte`` (``.gz`` also read), parsed as IDX files.
- ``cifar10``: ``ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch}``;
  ``cifar100``: ``ROOT/cifar-100-python/{train,test}`` (fine labels). These are Python
  pickles; they are read by an unpickler that can only rebuild numpy arrays, so a
  tampered file cannot run code.

``download=True`` fetches the official archives into ``ROOT`` (needs internet). Images are
kept as uint8 with their value range ``scale``; the training code normalises each batch
with the per-channel ``mean``/``std`` of the training split.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import shutil
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalingfit.errors import DataError, require

__all__ = ["DATASETS", "ImageData", "load", "draw_train_subset", "read_cifar_batch",
           "read_idx"]

DATASETS = ("digits", "mnist", "cifar10", "cifar100")


@dataclass
class ImageData:
    """A dataset held in memory: uint8 images (N, C, H, W) and int64 labels (N,)."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    scale: float               # the largest pixel value (255, or 16 for digits)
    mean: tuple[float, ...]    # per channel, of train_x / scale
    std: tuple[float, ...]

    @property
    def shape(self):
        return tuple(self.train_x.shape[1:])


def _finish(name, train_x, train_y, test_x, test_y, num_classes, scale):
    pixels = train_x.astype(np.float64) / scale
    axes = (0, 2, 3)
    return ImageData(name, train_x, train_y.astype(np.int64), test_x, test_y.astype(np.int64),
                     num_classes, float(scale), tuple(pixels.mean(axis=axes).tolist()),
                     tuple(pixels.std(axis=axes).tolist()))


def load(name: str, root=None, *, download: bool = False) -> ImageData:
    """Load dataset ``name`` from ``root``.

    Raises
    ------
    DataError
        If a file is missing (the message lists the expected files) or malformed.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}.", fix=f"choose one of {', '.join(DATASETS)}.")
    if name == "digits":
        return _load_digits()
    if root is None:
        raise DataError(f"{name} needs --data-root DIR (the folder holding the files).")
    root = Path(root)
    if download:
        _download(name, root)
    return {"mnist": _load_mnist, "cifar10": _load_cifar10, "cifar100": _load_cifar100}[name](
        root)


def draw_train_subset(n_train: int, train_size: int, seed: int) -> np.ndarray:
    """Indices of the ``train_size`` training examples of a run, drawn without replacement
    from ``n_train`` by ``seed`` (the same on every machine)."""
    if not 0 < train_size <= n_train:
        raise DataError(f"train_size {train_size} is out of range: the training split has "
                        f"{n_train} examples.", column="train_size",
                        fix=f"choose a train size between 1 and {n_train}.")
    return np.random.default_rng(seed).permutation(n_train)[:train_size]


# ------------------------------------------------------------------------------ digits

def _load_digits():
    digits = require("sklearn.datasets", "torch").load_digits()
    images = digits.images.astype(np.uint8)[:, None]  # values 0..16
    order = np.random.default_rng(0).permutation(len(images))
    train, test = order[:1297], order[1297:]
    return _finish("digits", images[train], digits.target[train], images[test],
                   digits.target[test], 10, 16)


# ------------------------------------------------------------------------------- MNIST

MNIST_FILES = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
               "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def read_idx(path) -> np.ndarray:
    """An IDX file (the MNIST format: magic, big-endian sizes, raw uint8 data)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError("not an IDX file of unsigned bytes (bad magic number).", source=path,
                        fix="re-download the MNIST files.")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise DataError(f"holds {data.size} bytes of data, but its header says "
                        f"{'×'.join(map(str, dims))}.", source=path,
                        fix="the file is truncated; re-download it.")
    return data.reshape(dims)


def _find(folder: Path, stem: str):
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_mnist(root):
    folders = [root / "MNIST" / "raw", root]
    for folder in folders:
        paths = {k: _find(folder, stem) for k, stem in MNIST_FILES.items()}
        if all(paths.values()):
            break
    else:
        raise DataError(
            f"MNIST files not found under {root}; expected {', '.join(MNIST_FILES.values())} "
            f"(or .gz) in {folders[0]}.",
            fix="copy torchvision's MNIST folder there, or pass --download.")
    arrays = {k: read_idx(p) for k, p in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"the {split} images {x.shape} and labels {y.shape} do not match.",
                            source=paths[f"{split}_x"], fix="re-download the MNIST files.")
    return _finish("mnist", arrays["train_x"][:, None], arrays["train_y"],
                   arrays["test_x"][:, None], arrays["test_y"], 10, 255)


# ------------------------------------------------------------------------------- CIFAR

def _numpy_reconstruct():
    return np.empty(0).__reduce__()[0]  # numpy's array-rebuilding function, whatever module


def _latin1_encode(text, encoding="latin1"):
    """The only codec call a CIFAR pickle written by Python 3 (protocol 2) needs."""
    if encoding != "latin1" or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r}")
    return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds dicts, lists, strings, numbers and numpy arrays, and nothing else: any other
    global (``os.system``, ``builtins.eval``, ...) is refused before it can be called."""

    SAFE = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct(),
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _latin1_encode,
    }

    def find_class(self, module, name):
        try:
            return self.SAFE[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load '{module}.{name}': a CIFAR batch "
                                         "holds only arrays, lists and strings") from None


def read_cifar_batch(path, label_key: bytes = b"labels"):
    """One CIFAR python batch: (images uint8 (N, 3, 32, 32), labels int64 (N,))."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = _ArrayUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise DataError(f"not a CIFAR python batch ({err}).", source=path,
                        fix="re-download the dataset; never load pickles of unknown origin."
                        ) from err
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise DataError(f"expected a dict with b'data' and {label_key!r}, found {keys}.",
                        source=path, fix="check that this is the CIFAR python version.")
    data, labels = batch[b"data"], np.asarray(batch[label_key])
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data)):
        raise DataError(f"b'data' should be uint8 (N, 3072) with N labels; found "
                        f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')} and "
                        f"{len(labels)} labels.", source=path,
                        fix="re-download the dataset.")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_files(folder: Path, names, dataset):
    paths = [folder / n for n in names]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"{dataset} files not found: expected {', '.join(names)} in {folder} "
                        f"(missing {', '.join(missing)}).",
                        fix="point --data-root at the folder holding "
                            f"'{folder.name}', or pass --download.")
    return paths


def _load_cifar10(root):
    folder = root / "cifar-10-batches-py"
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    batches = [read_cifar_batch(p) for p in _cifar_files(folder, names, "CIFAR-10")]
    train_x = np.concatenate([b[0] for b in batches[:5]])
    train_y = np.concatenate([b[1] for b in batches[:5]])
    return _checked_labels(_finish("cifar10", train_x, train_y, *batches[5], 10, 255), folder)


def _load_cifar100(root):
    folder = root / "cifar-100-python"
    train, test = (read_cifar_batch(p, b"fine_labels")
                   for p in _cifar_files(folder, ["train", "test"], "CIFAR-100"))
    return _checked_labels(_finish("cifar100", *train, *test, 100, 255), folder)


def _checked_labels(data, source):
    for split, labels in (("train", data.train_y), ("test", data.test_y)):
        if labels.size and (labels.min() < 0 or labels.max() >= data.num_classes):
            raise DataError(f"{split} labels span {labels.min()}..{labels.max()}, outside "
                            f"0..{data.num_classes - 1}.", source=source,
                            fix="re-download the dataset.")
    return data


# ---------------------------------------------------------------------------- download

_ARCHIVES = {
    "mnist": [(f"https://ossci-datasets.s3.amazonaws.com/mnist/{stem}.gz", md5, "MNIST/raw")
              for stem, md5 in (
                  ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
                  ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
                  ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
                  ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"))],
    "cifar10": [("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                 "c58f30108f718f92721af3b95e74349a", ".")],
    "cifar100": [("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                  "eb9058c3a382ffc7106e4002c42a8d85", ".")],
}


def _download(name, root: Path):
    """Fetch the official files (checked by MD5) into torchvision's layout under ``root``."""
    for url, md5, subdir in _ARCHIVES[name]:
        target = root / subdir / url.rsplit("/", 1)[1]
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            print(f"downloading {url}", flush=True)
            partial = target.with_suffix(target.suffix + ".part")
            try:
                with urllib.request.urlopen(url) as response, open(partial, "wb") as f:
                    shutil.copyfileobj(response, f)
            except OSError as err:  # URLError, timeouts and resets are OSErrors
                partial.unlink(missing_ok=True)
                raise DataError(f"downloading {url} failed ({getattr(err, 'reason', err)}).",
                                source=target, fix="check the network, or fetch the file "
                                "elsewhere and put it at this path.") from err
            partial.replace(target)
        if hashlib.md5(target.read_bytes()).hexdigest() != md5:
            raise DataError("MD5 checksum mismatch.", source=target,
                            fix="delete the file and download it again.")
        if target.name.endswith(".tar.gz"):
            with tarfile.open(target) as archive:
                archive.extractall(root, filter="data")  # no absolute paths or links out
