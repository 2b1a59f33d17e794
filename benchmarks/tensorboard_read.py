"""Reading TensorBoard logs: scalingfit against tbparse, side by side on the same files.

2,000,000 scalars in 4 runs (125,000 steps x 4 metrics each), written by PyTorch's
SummaryWriter (the most common writer), in one of these layouts:

- ``simple``: one scalar per event, ``writer.add_scalar(tag, value, step)``;
- ``multi``: one event per step whose ``Summary`` holds the four values, as many training
  loops write them (``writer.file_writer.add_summary(Summary(value=[...]), step)``);
- ``add_scalars``: ``writer.add_scalars("eval", {"error": e, "norm": n}, step)`` (and
  ``"train"``, ``{"error", "loss"}``), which writes each series into its own sub-folder of
  the run, ``RUN/eval_error/events...``, under the tag ``eval``;
- ``tensor``: one scalar per event in TF2's layout (float32 ``tensor_content``).

Each layout is read, in alternation, by

- ``scalingfit.load`` — the whole path to a validated canonical table: framing, both
  checksums of every record, decoding, joining metrics on steps, mapping, validation;
- ``tbparse.SummaryReader(logdir).scalars`` (``.tensors`` for the tensor layout) — a
  long table of (run directory, tag, step, value).

Prints, per layout, the median time of each over the repeats and the ratio of the medians.

    python benchmarks/tensorboard_read.py [--repeats 5] [--dir DIR]
                                          [--layout simple multi add_scalars tensor]
                                          [--steps 125000]

``--dir`` keeps the generated logs, one sub-directory per layout (writing them takes a
minute or two per layout); the default layouts are ``simple``, ``multi`` and
``add_scalars``.
"""

from __future__ import annotations

import argparse
import statistics
import struct
import tempfile
import time
from pathlib import Path

import numpy as np

RUNS = [f"cnn_cifar10_P{p}_seed0" for p in (1000, 2000, 4000, 8000)]
TAGS = ("test/error", "norm/spectral_complexity", "train/error", "train/loss")
#: add_scalars(main_tag, {key: value}) -> the metric <main_tag>/<key>, and the folder
SERIES = (("eval", "error"), ("eval", "norm"), ("train", "error"), ("train", "loss"))
STEPS = 125_000
LAYOUTS = ("simple", "multi", "add_scalars", "tensor")
TEMPLATE = {"runs": {"template": "{architecture}_{dataset}_P{train_size}_seed{seed}"}}
MAPPINGS = {"add_scalars": {**TEMPLATE, "metrics": {"test_error": "eval/error",
                                                    "norm_spectral_complexity": "eval/norm"}}}


def write_logs(root: Path, layout: str, steps: int):
    """Write the runs with PyTorch's SummaryWriter in one of the layouts."""
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import scalar

    for r, run in enumerate(RUNS):
        with SummaryWriter(str(root / run)) as writer:
            for step in range(steps):
                error = 0.9 / (1 + step / (100 * (r + 1)))
                values = (error, 10.0 + step / 100, error / 2, 2.3 * error)
                if layout == "simple":
                    for tag, value in zip(TAGS, values, strict=True):
                        writer.add_scalar(tag, value, step)
                elif layout == "multi":
                    summary = scalar(TAGS[0], values[0])
                    for tag, value in zip(TAGS[1:], values[1:], strict=True):
                        summary.value.extend(scalar(tag, value).value)
                    writer.file_writer.add_summary(summary, step)
                elif layout == "add_scalars":
                    writer.add_scalars("eval", {"error": values[0], "norm": values[1]}, step)
                    writer.add_scalars("train", {"error": values[2], "loss": values[3]}, step)
                else:
                    for tag, value in zip(TAGS, values, strict=True):
                        writer.file_writer.add_summary(_tf2_scalar(tag, value), step)


def _tf2_scalar(tag, value):
    """A Summary laid out as TF2's tf.summary.scalar writes it (float32 tensor_content)."""
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.plugins.scalar import metadata

    tensor = tensor_pb2.TensorProto(dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                    tensor_content=struct.pack("<f", value))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(None, None))])


def read_with_scalingfit(root, layout):
    import scalingfit

    return scalingfit.load(root, MAPPINGS.get(layout, TEMPLATE))


def read_with_tbparse(root, layout):
    from tbparse import SummaryReader

    reader = SummaryReader(str(root), extra_columns={"dir_name"})
    # tbparse puts tensor-encoded scalars in .tensors, simple values in .scalars
    return reader.tensors if layout == "tensor" else reader.scalars


def test_errors_of(scalars, layout):
    """tbparse's test errors, in run and step order (for the add_scalars layout, the
    series folder ``<run>/eval_error`` under the tag ``eval``)."""
    if layout == "add_scalars":
        chosen = scalars[scalars["dir_name"].str.endswith("/eval_error")]
    else:
        chosen = scalars[scalars["tag"] == TAGS[0]]
    chosen = chosen.sort_values(["dir_name", "step"])
    return np.asarray(chosen["value"].tolist(), float).ravel()


def bench(root: Path, layout: str, steps: int, repeats: int):
    if not (root / RUNS[-1]).exists():
        started = time.perf_counter()
        write_logs(root, layout, steps)
        print(f"wrote {len(RUNS)} runs x {steps} steps x {len(TAGS)} metrics = "
              f"{len(RUNS) * steps * len(TAGS):,} scalars ({layout}) in "
              f"{time.perf_counter() - started:.0f} s to {root}")
    ours, theirs = [], []
    for _ in range(repeats):  # alternate, so that both see the same machine load
        started = time.perf_counter()
        table = read_with_scalingfit(root, layout)
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        scalars = read_with_tbparse(root, layout)
        theirs.append(time.perf_counter() - started)
        del scalars
    scalars = read_with_tbparse(root, layout)
    assert len(table) == len(RUNS) * steps, len(table)
    assert len(scalars) == len(RUNS) * steps * len(TAGS), len(scalars)
    assert table["run_id"].nunique() == len(RUNS), table["run_id"].unique()
    # both read the same numbers
    ours_error = table.sort_values(["run_id", "step"])["test_error"].to_numpy()
    assert np.array_equal(test_errors_of(scalars, layout), ours_error)
    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(f"[{layout}] {len(RUNS) * steps * len(TAGS):,} scalars in {len(RUNS)} runs")
    print(f"  scalingfit.load : median {ours_median:.3f} s  "
          f"({', '.join(f'{t:.3f}' for t in ours)})")
    print(f"  tbparse         : median {theirs_median:.3f} s  "
          f"({', '.join(f'{t:.3f}' for t in theirs)})")
    print(f"  ratio (tbparse / scalingfit): {theirs_median / ours_median:.1f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where to keep the logs (default: a temp dir)")
    parser.add_argument("--layout", nargs="+", choices=LAYOUTS,
                        default=["simple", "multi", "add_scalars"])
    parser.add_argument("--steps", type=int, default=STEPS, help="steps per run")
    args = parser.parse_args()

    import tbparse  # noqa: F401  (imports are not what is measured)

    from scalingfit.ingest import tensorboard

    tensorboard._protos()
    with tempfile.TemporaryDirectory() as tmp:
        for layout in args.layout:
            root = (args.dir or Path(tmp)) / f"{layout}_{args.steps}"
            bench(root, layout, args.steps, args.repeats)


if __name__ == "__main__":
    main()
