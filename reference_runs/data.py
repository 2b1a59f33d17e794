"""Image datasets, held whole in memory (and then on the device).

- ``mnist``, ``cifar10``, ``cifar100``: torchvision's datasets and folder layout under
  ``root``: ``ROOT/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``,
  ``ROOT/cifar-10-batches-py/{data_batch_1..5,test_batch}``,
  ``ROOT/cifar-100-python/{train,test}`` (fine labels). ``download=True`` runs
  torchvision's download (official files, MD5-checked, unpacked there; nothing fetched
  when they are already there). MNIST is parsed by torchvision. The CIFAR batches are
  Python pickles, which torchvision would load with plain ``pickle``: they are read here by
  an unpickler that can only rebuild numpy arrays, lists and strings, so a tampered file
  cannot run code (:func:`read_cifar_batch`).
- ``digits``: scikit-learn's bundled 8×8 digits (1,797 images, offline). It has no
  official test split: a fixed permutation (seed 0) keeps 1,297 for training, 500 for test.
- ``teacher``: synthetic, made from a seed (no file, no download): Gaussian inputs shaped
  as one-channel ``side``×``side`` images, labelled by a fixed random teacher network, a
  fraction ``label_noise`` of the training labels replaced by another class; the test set
  is large and clean (:class:`TeacherConfig`, set through ``options``).

Label noise, ``options={"label_noise": f}`` (``--data.label_noise=f``), works on every
dataset: a fixed fraction f of the training split's labels, chosen by ``noise_seed``, is
replaced by another class, drawn uniformly (so a flipped label is always wrong); the test
split stays clean. Each run's P examples are then drawn from the noisy split.

Images are kept as uint8 (the teacher's inputs as float32) with their value range
``scale``; the training code normalises each batch with the per-channel ``mean``/``std``
of the training split.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scalingfit.errors import DataError, MissingDependencyError, first_line, require
from scalingfit.ingest._safe_pickle import ArraysOnlyUnpickler, Refused

from .config import from_dict

__all__ = ["DATASETS", "OFFLINE", "ImageData", "LabelNoise", "TeacherConfig", "load",
           "check_options", "flip_labels", "draw_train_subset", "read_cifar_batch"]

DATASETS = ("digits", "mnist", "cifar10", "cifar100", "teacher")
OFFLINE = ("digits", "teacher")  # need no data folder


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


def load(name: str, root=None, *, download: bool = False, options: dict | None = None
         ) -> ImageData:
    """Load dataset ``name`` from ``root``; ``options`` set the label noise of any dataset
    (:class:`LabelNoise`) and the fields of the synthetic one (:class:`TeacherConfig`).

    Raises
    ------
    DataError
        If a file is missing (the message lists the expected files) or malformed, or an
        option is unknown or of the wrong type.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}.", fix=f"choose one of {', '.join(DATASETS)}.")
    settings = check_options(name, options)
    if name == "teacher":
        data = _make_teacher(settings)
    elif name == "digits":
        data = _load_digits()
    else:
        if root is None:
            raise DataError(f"{name} needs --data-root DIR (the folder holding the files).")
        root = Path(root)
        data = (_load_mnist(root, download) if name == "mnist"
                else _load_cifar(name, root, download))
    if settings.label_noise > 0:
        # A stream of its own: default_rng(s) also draws the P examples of the run of seed s
        # (draw_train_subset), and the same permutation would flip exactly that run's first
        # examples.
        rng = np.random.default_rng([_NOISE_STREAM, settings.noise_seed])
        data.train_y = flip_labels(data.train_y, settings.label_noise, data.num_classes, rng)
    return data


_NOISE_STREAM = 0x6E6F697365  # "noise"


@dataclass
class LabelNoise:
    label_noise: float = 0.0   # fraction of the training split's labels replaced
    noise_seed: int = 0        # which labels, and by what (not the run's seed)


def check_options(name: str, options: dict | None) -> LabelNoise:
    """The settings ``options`` give dataset ``name``: a :class:`TeacherConfig` for the
    teacher, a :class:`LabelNoise` for the others.

    Raises
    ------
    DataError
        If an option is unknown, of the wrong type or out of range.
    """
    kind = TeacherConfig if name == "teacher" else LabelNoise
    settings = from_dict(kind, dict(options or {}), source=f"the {name} data options")
    if not 0 <= settings.label_noise <= 1:
        raise DataError(f"label_noise = {settings.label_noise}: it is a fraction of the "
                        "training labels, in [0, 1].")
    if name == "teacher":
        for key, low in (("side", 1), ("hidden", 1), ("n_train", 1), ("n_test", 1),
                         ("classes", 2)):
            if getattr(settings, key) < low:
                raise DataError(f"teacher option {key} = {getattr(settings, key)} must be at "
                                f"least {low}.")
    return settings


def flip_labels(labels: np.ndarray, fraction: float, classes: int, rng) -> np.ndarray:
    """A copy of ``labels`` with ``round(fraction · n)`` of them, chosen by ``rng``, replaced
    by another class drawn uniformly (a flipped label is never the original)."""
    labels = labels.copy()
    flip = rng.permutation(len(labels))[: round(fraction * len(labels))]
    labels[flip] = (labels[flip] + rng.integers(1, classes, len(flip))) % classes
    return labels


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


# ----------------------------------------------------------------------------- teacher

@dataclass
class TeacherConfig(LabelNoise):
    side: int = 8              # inputs: 1 × side × side "images" of i.i.d. N(0, 1) entries
    hidden: int = 32           # the teacher: Linear–tanh–Linear, with this hidden width
    classes: int = 10
    n_train: int = 4000        # the pool each run's P training examples are drawn from
    n_test: int = 10000        # clean labels: the test error is the teacher's disagreement
    seed: int = 0              # inputs and teacher (not the run's seed)


def _make_teacher(config: TeacherConfig) -> ImageData:
    """The clean teacher–student data set of ``config``, the same on every machine.

    The teacher is ``argmax(W2 tanh(W1 x) - b)``, Gaussian weights scaled by 1/√fan-in, with
    offsets ``b`` adjusted until the classes are (nearly) equally frequent over all inputs,
    so that the chance error is 1 − 1/classes.
    """
    rng = np.random.default_rng(config.seed)
    dim, n = config.side ** 2, config.n_train + config.n_test
    x = rng.standard_normal((n, dim))
    w1 = rng.standard_normal((dim, config.hidden)) / np.sqrt(dim)
    w2 = rng.standard_normal((config.hidden, config.classes)) / np.sqrt(config.hidden)
    scores = np.tanh(x @ w1) @ w2
    offsets = scores.mean(axis=0)
    for _ in range(100):  # shrink the offset of a class that is too rare, and vice versa
        counts = np.bincount(np.argmax(scores - offsets, axis=1), minlength=config.classes)
        offsets += 0.1 * scores.std() * np.log(np.maximum(counts, 1) * config.classes / n)
    y = np.argmax(scores - offsets, axis=1)
    images = x.astype(np.float32).reshape(n, 1, config.side, config.side)
    return _finish("teacher", images[: config.n_train], y[: config.n_train],
                   images[config.n_train:], y[config.n_train:], config.classes, 1.0)


# --------------------------------------------------------------------- MNIST and CIFAR

def _torchvision_datasets():
    """``torchvision.datasets``, or an error naming the extra that installs it."""
    try:
        return require("torchvision.datasets", "torch")
    except RuntimeError as err:
        # A torchvision built for another torch fails as it registers its operators
        # ("operator torchvision::nms does not exist").
        import torch

        raise MissingDependencyError(
            f"torchvision does not import beside torch {torch.__version__} "
            f"({first_line(err)}). Install a torch and a torchvision released together "
            "(e.g. torch 2.14.1 with torchvision 0.29.1).") from err


def _download(dataset, root: Path, name: str):
    """torchvision's own download step for ``dataset`` (a dataset class): fetch the official
    files, check their MD5 sums, unpack them into its layout under ``root``. Nothing is
    fetched when the files are already there and intact. It runs on a bare instance: the
    CIFAR constructor would go on to unpickle the batches with plain ``pickle``."""
    bare = dataset.__new__(dataset)
    bare.root = str(root)
    try:
        bare.download()
    except (OSError, RuntimeError) as err:  # URLError is an OSError; torchvision raises a
        # RuntimeError for a checksum mismatch, and one listing every mirror it tried
        reason = " ".join(str(err).split()) or type(err).__name__
        raise DataError(f"downloading {name} into {root} failed ({reason}).",
                        fix="check the network, or fetch the files elsewhere and copy them "
                            "into torchvision's layout there.") from err


def _existing(root: Path, layout: str, names, dataset: str) -> Path:
    """``root/layout``, once every file of ``names`` is found there."""
    folder = root / layout
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise DataError(f"{dataset} files not found: expected {', '.join(names)} in {folder} "
                        f"(missing {', '.join(missing)}).",
                        fix=f"point --data-root at the folder holding '{layout}' (torchvision's "
                            "layout), or pass --download.")
    return folder


def _load_mnist(root, download):
    datasets = _torchvision_datasets()
    if download:
        _download(datasets.MNIST, root, "MNIST")
    # torchvision reads the unpacked files; --download also unpacks official .gz files
    # already there, without fetching them again.
    names = [name.removesuffix(".gz") for name, _ in datasets.MNIST.resources]
    folder = _existing(root, "MNIST/raw", names, "MNIST")
    try:
        train, test = (datasets.MNIST(root, train=split) for split in (True, False))
        arrays = [(d.data.numpy()[:, None], d.targets.numpy()) for d in (train, test)]
    except Exception as err:  # its parser asserts on a bad header; a short file fails to reshape
        raise DataError(f"not readable as MNIST IDX files ({type(err).__name__}: "
                        f"{first_line(err)}).", source=folder,
                        fix="delete the folder and download the files again.") from err
    return _checked(_finish("mnist", *arrays[0], *arrays[1], 10, 255), folder)


def read_cifar_batch(path, label_key: bytes = b"labels"):
    """One CIFAR python batch: (images uint8 (N, 3, 32, 32), labels int64 (N,)).

    The batch is a pickle. It is read by an unpickler that rebuilds only numpy arrays,
    dicts, lists, strings and numbers (:mod:`scalingfit.ingest._safe_pickle`), not by
    ``pickle.load`` as torchvision does, so a tampered file cannot run code.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            batch = ArraysOnlyUnpickler(f, encoding="bytes").load()
    except Refused as err:
        raise DataError(f"refused to load: its pickle calls '{err}', which a CIFAR batch "
                        "never holds; nothing in it was run.", source=path,
                        fix="re-download the dataset; never load pickles of unknown origin."
                        ) from None
    except Exception as err:  # a damaged pickle raises anything from EOFError to TypeError
        raise DataError(f"not a CIFAR python batch ({type(err).__name__}: {first_line(err)}).",
                        source=path, fix="re-download the dataset.") from None
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


def _load_cifar(name, root, download):
    datasets = _torchvision_datasets()
    dataset, classes, label_key = {"cifar10": (datasets.CIFAR10, 10, b"labels"),
                                   "cifar100": (datasets.CIFAR100, 100, b"fine_labels")}[name]
    title = f"CIFAR-{classes}"
    if download:
        _download(dataset, root, title)
    train, test = ([n for n, _ in files] for files in (dataset.train_list, dataset.test_list))
    folder = _existing(root, dataset.base_folder, train + test, title)
    batches = [read_cifar_batch(folder / n, label_key) for n in train + test]
    train_x, train_y = (np.concatenate(part) for part in zip(*batches[:-1]))
    test_x, test_y = batches[-1]  # one test batch in both
    return _checked(_finish(name, train_x, train_y, test_x, test_y, classes, 255), folder)


def _checked(data, source):
    for split, images, labels in (("train", data.train_x, data.train_y),
                                  ("test", data.test_x, data.test_y)):
        if len(images) != len(labels):
            raise DataError(f"the {split} split has {len(images)} images and {len(labels)} "
                            "labels.", source=source, fix="re-download the dataset.")
        if labels.size and (labels.min() < 0 or labels.max() >= data.num_classes):
            raise DataError(f"{split} labels span {labels.min()}..{labels.max()}, outside "
                            f"0..{data.num_classes - 1}.", source=source,
                            fix="re-download the dataset.")
    return data
