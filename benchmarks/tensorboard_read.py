"""Reading TensorBoard logs: scalingfit against tbparse, side by side on the same files.

400,000 scalars in 4 runs (25,000 steps x 4 tags each), written by PyTorch's
SummaryWriter (the most common writer), read in alternation by

- ``scalingfit.load`` — the whole path to a validated canonical table: framing, both
  checksums of every record, decoding, joining tags on steps, mapping, validation;
- ``tbparse.SummaryReader(logdir).scalars`` (``.tensors`` for the tensor layout) — a
  long table of (run, tag, step, value).

Prints the median time of each over the repeats and the ratio of the medians.

    python benchmarks/tensorboard_read.py [--repeats 5] [--dir DIR] [--layout tensor]

``--dir`` keeps the generated logs (generation takes a while); ``--layout tensor`` writes
TF2-style tensor-encoded scalars (``tf.summary.scalar``'s layout) instead of simple_value.
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
STEPS = 25_000
TEMPLATE = {"runs": {"template": "{architecture}_{dataset}_P{train_size}_seed{seed}"}}


def write_logs(root: Path, layout: str):
    """Write the runs with PyTorch's SummaryWriter (simple_value) or TF2's tensor layout."""
    from torch.utils.tensorboard import SummaryWriter

    for r, run in enumerate(RUNS):
        with SummaryWriter(str(root / run)) as writer:
            for step in range(STEPS):
                error = 0.9 / (1 + step / (100 * (r + 1)))
                values = (error, 10.0 + step / 100, error / 2, 2.3 * error)
                for tag, value in zip(TAGS, values, strict=True):
                    if layout == "simple":
                        writer.add_scalar(tag, value, step)
                    else:
                        writer.file_writer.add_summary(_tf2_scalar(tag, value), step)


def _tf2_scalar(tag, value):
    """A Summary laid out as TF2's tf.summary.scalar writes it (float32 tensor_content)."""
    from tensorboard.compat.proto import summary_pb2, tensor_pb2, tensor_shape_pb2
    from tensorboard.plugins.scalar import metadata

    tensor = tensor_pb2.TensorProto(dtype=1, tensor_shape=tensor_shape_pb2.TensorShapeProto(),
                                    tensor_content=struct.pack("<f", value))
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag=tag, tensor=tensor, metadata=metadata.create_summary_metadata(None, None))])


def read_with_scalingfit(root):
    import scalingfit

    return scalingfit.load(root, TEMPLATE)


def read_with_tbparse(root, layout):
    from tbparse import SummaryReader

    reader = SummaryReader(str(root), extra_columns={"dir_name"})
    # tbparse puts tensor-encoded scalars in .tensors, simple values in .scalars
    return reader.scalars if layout == "simple" else reader.tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dir", type=Path, help="where to keep the logs (default: a temp dir)")
    parser.add_argument("--layout", choices=("simple", "tensor"), default="simple")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        if not (root / RUNS[-1]).exists():
            started = time.perf_counter()
            write_logs(root, args.layout)
            print(f"wrote {len(RUNS)} runs x {STEPS} steps x {len(TAGS)} tags = "
                  f"{len(RUNS) * STEPS * len(TAGS):,} scalars ({args.layout}) in "
                  f"{time.perf_counter() - started:.0f} s to {root}")
        import tbparse  # noqa: F401  (imports are not what is measured)

        from scalingfit.ingest import tensorboard

        tensorboard._protos()
        ours, theirs = [], []
        for _ in range(args.repeats):  # alternate, so that both see the same machine load
            started = time.perf_counter()
            table = read_with_scalingfit(root)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            scalars = read_with_tbparse(root, args.layout)
            theirs.append(time.perf_counter() - started)
        assert len(table) == len(RUNS) * STEPS, len(table)
        assert len(scalars) == len(RUNS) * STEPS * len(TAGS), len(scalars)
        # both read the same numbers
        theirs_error = scalars[scalars["tag"] == "test/error"].sort_values(["dir_name", "step"])
        ours_error = table.sort_values(["run_id", "step"])["test_error"].to_numpy()
        assert np.array_equal(np.asarray(theirs_error["value"].tolist(), float).ravel(),
                              ours_error)
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        print(f"scalingfit.load : median {ours_median:.3f} s  "
              f"({', '.join(f'{t:.3f}' for t in ours)})")
        print(f"tbparse         : median {theirs_median:.3f} s  "
              f"({', '.join(f'{t:.3f}' for t in theirs)})")
        print(f"ratio (tbparse / scalingfit): {theirs_median / ours_median:.1f}x")


if __name__ == "__main__":
    main()
