"""A corpus of real learning curves, trained here on offline data: one canonical table per set.

    python -m reference_runs corpus --out reference_runs/data/corpus [--only NAME] [--quick]

The fitting core is tested on curves drawn from its own model family; real curves have
other shapes (docs/corpus.md): no rise and no optimum in range, long gradual bends,
first points far below chance, broad flat minima, a clear rise after the optimum, curves
of different P stacked from the first point. This command trains every set of
:data:`SETS` (scikit-learn's digits with a CNN, an MLP, a ResNet and a ViT; a teacher–
student MLP with label noise; with and without weight decay) and writes
``OUT/<set>.csv.gz``, then makes the sets of :data:`DERIVED` from them by documented,
deterministic transformations (labelled in the columns ``derived_from`` and
``derivation``), and finally rewrites the census table in ``OUT/README.md``
(:func:`census`, measured from the files).

Each trained set: every training-set size with the seeds 0, 1, 2 trained together as one
vmapped stack (``train.py``), full batch except the ViT (one optimiser step per epoch at
every P, so a larger P, which needs a larger norm, gets there later), evaluation every
``eval_every`` epochs. Floats are
written with 6 significant digits; the wall-clock column ``train_seconds`` is dropped, so
two runs of the command on one machine write the same bytes.

``--only NAME`` makes one set (a derived set reads its source from ``OUT``, training it
first if it is not there); ``--quick`` trains a tiny version of each set (two sizes, 20
epochs; seconds) for smoke tests; ``--jobs N`` trains N sets at once, one single-threaded
process each; ``--census`` only rewrites the census from the files.
"""

from __future__ import annotations

import gzip
import math
import re
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from scalingfit.errors import ScalingfitError

__all__ = ["TrainedSet", "DerivedSet", "SETS", "DERIVED", "make_set", "train_set",
           "wide_norm", "below_chance_start", "seed_averaged", "run_shape", "census",
           "census_markdown", "settings_markdown", "readme_block", "write_census", "write_set",
           "add_arguments", "run"]

NORM = "lognorm_spectral_complexity"   # the norm the census and the derivations use
SEEDS = (0, 1, 2)


# ------------------------------------------------------------------------------ sets

@dataclass
class TrainedSet:
    """One set: every size in ``sizes`` × every seed, trained with ``settings``."""

    arch: str
    dataset: str
    sizes: tuple[int, ...]
    settings: dict                           # TrainConfig fields (reference_runs/train.py)
    shapes: str                              # what it is there to show
    seeds: tuple[int, ...] = SEEDS


@dataclass
class DerivedSet:
    """A transformation ``derive(table) -> table`` of the trained set ``source``."""

    source: str
    derive: str                              # a name in DERIVATIONS
    derivation: str                          # what was done, written into every row
    shapes: str
    options: dict = field(default_factory=dict)


# Full batch (batch_size above the largest P): see the module docstring.
FULL = 8192
DIGITS = (50, 100, 200, 400, 800, 1297)
DIGITS_10 = (50, 70, 100, 150, 200, 300, 400, 600, 800, 1297)
TEACHER = {"side": 3, "hidden": 8, "classes": 4, "n_train": 8000, "n_test": 10000,
           "label_noise": 0.2}
TEACHER_SIZES = (100, 150, 200, 300, 400, 600, 800, 1200, 1600, 3200, 6400)

SETS = {
    "digits-cnn": TrainedSet(
        "cnn", "digits", DIGITS,
        {"epochs": 300, "eval_every": 2, "batch_size": FULL, "lr": 3e-4},
        "small P on a floor, large P still improving; curves overlap early"),
    "digits-cnn-wd": TrainedSet(
        "cnn", "digits", DIGITS,
        {"epochs": 300, "eval_every": 2, "batch_size": FULL, "lr": 3e-4,
         "weight_decay": 2e-2},
        "weight decay: the norm first falls, then saturates"),
    "digits-cnn-noise": TrainedSet(
        "cnn", "digits", DIGITS,
        {"epochs": 400, "eval_every": 2, "batch_size": FULL, "lr": 3e-4,
         "data": {"label_noise": 0.2}},
        "20 % of the training labels flipped: a clear rise after the optimum"),
    "digits-mlp": TrainedSet(
        "mlp", "digits", DIGITS_10,
        {"epochs": 200, "eval_every": 2, "batch_size": FULL, "optimizer": "sgd", "lr": 0.02,
         "model": {"hidden": [256, 256]}},
        "ten sizes; every P on a floor, no rise"),
    "digits-resnet": TrainedSet(
        "resnet", "digits", DIGITS,
        {"epochs": 300, "eval_every": 3, "batch_size": FULL, "lr": 1e-3},
        "BatchNorm (the norm is not a scale of the function); seeds start at other norms"),
    "digits-vit": TrainedSet(
        "vit", "digits", DIGITS,
        {"epochs": 200, "eval_every": 2, "batch_size": 256, "lr": 5e-4},
        "a long bend over 6 decades: the local slope steepens, then a floor"),
    "teacher-mlp-noise": TrainedSet(
        "mlp", "teacher", TEACHER_SIZES,
        {"epochs": 1500, "eval_every": 10, "batch_size": FULL, "lr": 1e-3,
         "model": {"hidden": [64]}, "data": TEACHER},
        "label noise: a clear rise at small P, a broad flat minimum at large P"),
}

DERIVED = {
    "digits-vit-wide-norm": DerivedSet(
        "digits-vit", "wide_norm",
        "log λ → log c + k·log λ for every norm (λ → c·λ^k): the spectral complexity spans "
        "1e7 to 1e57",
        "very wide norm range", {"low": 7.0, "decades": 50.0}),
    "digits-mlp-below-chance": DerivedSet(
        "digits-mlp", "below_chance_start",
        "runs of P ≥ 400: the evaluations before the first at or below 5 % test error "
        "dropped",
        "large-P runs start far below chance", {"min_size": 400, "start_error": 0.05}),
    "digits-mlp-seed-averaged": DerivedSet(
        "digits-mlp", "seed_averaged",
        "test error averaged over the seeds of each P on a common grid of log λ (spectral "
        "complexity), linear in log λ; no n_test",
        "the held-out data's form", {"points": 120}),
    "teacher-mlp-noise-seed-averaged": DerivedSet(
        "teacher-mlp-noise", "seed_averaged",
        "test error averaged over the seeds of each P on a common grid of log λ (spectral "
        "complexity), linear in log λ; no n_test",
        "the held-out data's form", {"points": 120}),
}


# ------------------------------------------------------------------------------ train

def train_set(name: str, spec: TrainedSet, *, quick: bool = False, log=print) -> pd.DataFrame:
    """Train every size of ``spec`` (its seeds stacked) and return the set's table."""
    from .train import resolve_config, train

    sizes = spec.sizes[:2] if quick else spec.sizes
    settings = dict(spec.settings)
    if quick:  # a smoke test: the same code path in seconds
        settings.update(epochs=20, eval_every=5)
        if spec.dataset == "teacher":  # its norms move slowly: more (cheap) epochs
            settings.update(epochs=200, eval_every=50)
            settings["data"] = {**settings.get("data", {}), "n_train": 400, "n_test": 500}
    tables = []
    with tempfile.TemporaryDirectory() as work:
        for P in sizes:
            tick = time.perf_counter()
            config = resolve_config(overrides={
                **settings, "arch": spec.arch, "dataset": spec.dataset, "train_size": P,
                "seeds": list(spec.seeds), "device": "cpu", "checkpoint_every_s": 1e9,
                "out": str(Path(work) / f"P{P}.csv")})
            tables.append(train(config, log=lambda line: None))
            log(f"  {name}: P = {P} ({len(spec.seeds)} seeds, {config.epochs} epochs) in "
                f"{time.perf_counter() - tick:.0f} s")
    table = pd.concat(tables, ignore_index=True).drop(columns="train_seconds")
    table["label_noise"] = settings.get("data", {}).get("label_noise", 0.0)
    table["eval_every"] = settings["eval_every"]
    return table


# ------------------------------------------------------------------------- derivations

def wide_norm(table: pd.DataFrame, *, low: float, decades: float) -> pd.DataFrame:
    """Every norm mapped by one increasing affine map in log space, log λ → a + k·log λ,
    with k and a chosen so that the spectral complexity spans ``10**low`` to
    ``10**(low + decades)``.

    Law 1 is invariant under λ → c·λ^k up to its exponents: γ1 → γ1/k, γ2 → k·γ2, and
    γ1·γ2 (and the error) unchanged. Real products of layer norms (the paper's ViT) span
    such ranges; small CPU runs do not.
    """
    x = table[NORM]
    k = decades * math.log(10) / (x.max() - x.min())
    a = low * math.log(10) - k * x.min()
    out = table.copy()
    for column in [c for c in table.columns if c.startswith("lognorm_")]:
        out[column] = a + k * table[column]
    out["run_id"] = out["run_id"] + "-wide"
    out["norm_power"] = k
    return out


def below_chance_start(table: pd.DataFrame, *, min_size: int, start_error: float
                       ) -> pd.DataFrame:
    """Runs with P ≥ ``min_size`` lose their evaluations before the first one at or below
    ``start_error``; smaller runs are kept whole.

    Logging that starts late, or a pretrained start, gives such curves: the first logged
    point is already far below chance, and the plateau and the descent are not seen. A
    large run that never gets down to ``start_error`` is left out.
    """
    keep = []
    for _, run in table.groupby("run_id", sort=False):
        if run["train_size"].iloc[0] >= min_size:
            below = np.flatnonzero(run["test_error"].to_numpy() <= start_error)
            run = run.iloc[below[0]:] if len(below) else run.iloc[:0]
        keep.append(run)
    out = pd.concat(keep)
    out["run_id"] = out["run_id"] + "-late"
    return out


def seed_averaged(table: pd.DataFrame, *, points: int) -> pd.DataFrame:
    """One curve per (architecture, dataset, P): test error averaged over the seeds on a
    grid of ``points`` values of log λ (the spectral complexity) evenly spaced over the
    whole group, each P keeping the grid points inside the range every seed covers.

    Each run's error is interpolated linearly in log λ through the points where its norm
    reaches a new maximum (so a norm that dips is read as a function of its running
    maximum). The result has no seed, no n_test and one row per grid point (``step`` is
    the point's index on the group's grid, so one step is one norm at every P): the form
    of curves published as averages. Where the seeds of a P start or end at different
    norms, the average covers only the range they share; a P whose seeds share fewer than
    two grid points is left out, with a warning.
    """
    rows, skipped = [], []
    for (arch, dataset), group in table.groupby(["architecture", "dataset"], sort=False):
        grid = np.linspace(group[NORM].min(), group[NORM].max(), points)
        for P, runs in group.groupby("train_size"):
            curves, lo, hi = [], -np.inf, np.inf
            for _, run in runs.groupby("run_id", sort=False):
                x, y = run[NORM].to_numpy(), run["test_error"].to_numpy()
                record = x >= np.maximum.accumulate(x)
                curves.append((x[record], y[record]))
                lo, hi = max(lo, x[record][0]), min(hi, x[record][-1])
            inside = np.flatnonzero((grid >= lo) & (grid <= hi))
            if len(inside) < 2:  # the seeds share no stretch of the norm axis
                skipped.append(f"{arch}/{dataset} P={P}")
                continue
            mean = np.mean([np.interp(grid[inside], x, y) for x, y in curves], axis=0)
            for i, error in zip(inside, mean):
                rows.append({"run_id": f"{arch}_{dataset}_P{P}_mean", "architecture": arch,
                             "dataset": dataset, "train_size": P, "step": int(i),
                             "test_error": error, NORM: grid[i], "n_seeds": len(curves)})
    if skipped:
        warnings.warn(f"seed_averaged: the seeds of {', '.join(skipped)} share less than two "
                      "grid points of norm; left out", stacklevel=2)
    if not rows:
        raise ScalingfitError("seed_averaged: no training-set size has seeds that share a "
                              "stretch of the norm axis; train longer (or use more points).")
    return pd.DataFrame(rows)


DERIVATIONS = {f.__name__: f for f in (wide_norm, below_chance_start, seed_averaged)}


# ------------------------------------------------------------------------------- files

def write_set(table: pd.DataFrame, path) -> Path:
    """``table`` as gzipped CSV, 6 significant digits, the same bytes for the same table."""
    from scalingfit.atomic import atomic_path

    path = Path(path)
    text = table.to_csv(index=False, float_format="%.6g", lineterminator="\n")
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(gzip.compress(text.encode(), mtime=0))
    return path


def make_set(name: str, out, *, quick: bool = False, log=print) -> pd.DataFrame:
    """Make set ``name`` (trained or derived) and write ``out/<name>.csv.gz``."""
    out = Path(out)
    tick = time.perf_counter()
    if name in SETS:
        table = train_set(name, SETS[name], quick=quick, log=log)
    elif name in DERIVED:
        spec = DERIVED[name]
        source = out / f"{spec.source}.csv.gz"
        if not source.exists():
            log(f"{name}: its source {source} is not there; making it first")
            make_set(spec.source, out, quick=quick, log=log)
        table = DERIVATIONS[spec.derive](pd.read_csv(source), **spec.options)
        table["derived_from"] = spec.source
        table["derivation"] = spec.derivation
    else:
        raise ScalingfitError(f"unknown corpus set {name!r}; choose one of "
                              f"{', '.join([*SETS, *DERIVED])}.")
    path = write_set(table, out / f"{name}.csv.gz")
    log(f"{name}: wrote {path} ({table['run_id'].nunique()} runs, {len(table)} rows, "
        f"{path.stat().st_size / 1024:.0f} KiB) in {time.perf_counter() - tick:.0f} s")
    return table


# ------------------------------------------------------------------------------ census

def _smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average (shrinking at the ends)."""
    return pd.Series(y).rolling(window, center=True, min_periods=1).mean().to_numpy()


def run_shape(run: pd.DataFrame) -> dict:
    """Where one run's optimum is, measured on its test error smoothed over w evaluations
    (w = max(5, n/25), odd; n evaluations), against a margin of max(10 % of the error, two
    test examples when n_test is known).

    ``kind``: ``rise`` when the smoothed error ends above its minimum by more than the
    margin; ``improving`` when its minimum lies in the last tenth of the evaluations and it
    fell by more than the margin over the last fifth; ``flat`` otherwise (a floor: the
    optimum is somewhere on it). ``flat_decades``: how far in log10 λ past the optimum the
    smoothed error stays within 10 % of its minimum.
    """
    y, x = run["test_error"].to_numpy(), run[NORM].to_numpy() / math.log(10)
    n = len(y)
    window = max(5, n // 25) | 1
    smooth = _smooth(y, window)
    best = int(np.argmin(smooth))
    low = smooth[best]
    n_test = run["n_test"].iloc[0] if "n_test" in run else float("nan")

    def margin(error):
        return max(0.1 * error, 2 / n_test if pd.notna(n_test) else 0.0)

    if smooth[-1] - low > margin(low):
        kind = "rise"
    elif best >= n - max(window, n // 10) and smooth[int(0.8 * n)] - low > margin(low):
        kind = "improving"
    else:
        kind = "flat"
    within = smooth[best:] <= 1.1 * low
    last = best + (int(np.argmin(within)) - 1 if not within.all() else n - 1 - best)
    return {"kind": kind, "flat_decades": float(x[last] - x[best]),
            "first_error": float(y[0]), "best_error": float(y.min()),
            **dict(zip(("slope_early", "slope_mid", "slope_late"),
                       _descent_slopes(x[: best + 1], smooth[: best + 1])))}


def _descent_slopes(x, smooth):
    """d ln ε / d ln λ over the first, middle and last third (in log λ) of the descent:
    from where the smoothed error is first below 0.8 of its first value (off the plateau)
    to the optimum. NaN where a third holds fewer than three evaluations."""
    start = np.flatnonzero(smooth <= 0.8 * smooth[0])
    if not len(start):
        return [float("nan")] * 3
    x, y = x[start[0]:], np.log(smooth[start[0]:])
    edges = np.linspace(x.min(), x.max(), 4)
    slopes = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        part = (x >= lo) & (x <= hi)
        slopes.append(float(np.polyfit(x[part], y[part], 1)[0]) if part.sum() >= 3
                      and np.ptp(x[part]) > 0 else float("nan"))
    return slopes


def census(table: pd.DataFrame) -> dict:
    """The numbers of a set that the README's table gives (all measured from ``table``)."""
    shapes = pd.DataFrame([{"train_size": run["train_size"].iloc[0], **run_shape(run)}
                           for _, run in table.groupby("run_id", sort=False)])
    kinds = shapes["kind"].value_counts()
    sizes = sorted(table["train_size"].unique())
    largest = shapes[shapes["train_size"] == sizes[-1]]
    seeds = table["seed"].nunique() if "seed" in table else None
    return {
        "architecture": ",".join(sorted(table["architecture"].unique())),
        "dataset": ",".join(sorted(table["dataset"].unique())),
        "sizes": sizes,
        "seeds": seeds,
        "runs": len(shapes),
        "evals": int(table.groupby("run_id").size().max()),
        "last_step": int(table["step"].max()),
        "weight_decay": float(table["weight_decay"].max()) if "weight_decay" in table else None,
        "label_noise": float(table["label_noise"].max()) if "label_noise" in table else None,
        "rise": int(kinds.get("rise", 0)),
        "flat": int(kinds.get("flat", 0)),
        "improving": int(kinds.get("improving", 0)),
        "min_error": float(table["test_error"].min()),
        "max_error": float(table["test_error"].max()),
        "first_error_largest_p": float(largest["first_error"].median()),
        "norm_decades": float((table[NORM].max() - table[NORM].min()) / math.log(10)),
        "flat_decades_max": float(shapes["flat_decades"].max()),
        "slopes": [float(shapes[k].median()) for k in ("slope_early", "slope_mid",
                                                        "slope_late")],
    }


CENSUS_COLUMNS = ("set", "arch", "data", "sizes", "seeds", "last epoch (evals)", "wd",
                  "label noise", "runs: rise / flat / improving", "test error min–max",
                  "first error, largest P", "norm decades", "flat decades (max)",
                  "slope early / mid / late")


def _census_row(name: str, c: dict) -> list[str]:
    sizes = c["sizes"]
    sizes_text = (", ".join(map(str, sizes)) if len(sizes) <= 6
                  else f"{len(sizes)}: {sizes[0]}–{sizes[-1]}")
    return [name, c["architecture"], c["dataset"], sizes_text,
            "mean of 3" if c["seeds"] is None else str(c["seeds"]),
            f"{c['last_step']} ({c['evals']})",
            "–" if c["weight_decay"] is None else f"{c['weight_decay']:g}",
            "–" if c["label_noise"] is None else f"{c['label_noise']:g}",
            f"{c['rise']} / {c['flat']} / {c['improving']}",
            f"{c['min_error']:.3f}–{c['max_error']:.3f}",
            f"{c['first_error_largest_p']:.3f}", f"{c['norm_decades']:.1f}",
            f"{c['flat_decades_max']:.2f}", " / ".join(f"{v:.2f}" for v in c["slopes"])]


def census_markdown(folder) -> str:
    """The census of every set file in ``folder``, as a Markdown table (in :data:`SETS`,
    then :data:`DERIVED` order)."""
    folder = Path(folder)
    lines = ["| " + " | ".join(CENSUS_COLUMNS) + " |",
             "|" + "|".join("---" for _ in CENSUS_COLUMNS) + "|"]
    for name in [*SETS, *DERIVED]:
        path = folder / f"{name}.csv.gz"
        if path.exists():
            lines.append("| " + " | ".join(_census_row(name, census(pd.read_csv(path))))
                         + " |")
    return "\n".join(lines)


def settings_markdown() -> str:
    """How each set is made (from :data:`SETS` and :data:`DERIVED`), as a Markdown table."""
    lines = ["| set | made by | sizes (P) | seeds | settings | meant to show |",
             "|---|---|---|---|---|---|"]
    for name, spec in SETS.items():
        settings = ", ".join(f"{k}={_plain(v)}" for k, v in spec.settings.items())
        lines.append(f"| {name} | {spec.arch} on {spec.dataset}, trained | "
                     f"{', '.join(map(str, spec.sizes))} | "
                     f"{', '.join(map(str, spec.seeds))} | {settings} | {spec.shapes} |")
    for name, spec in DERIVED.items():
        options = ", ".join(f"{k}={v}" for k, v in spec.options.items())
        lines.append(f"| {name} | `{spec.derive}({options})` of {spec.source} | as "
                     f"{spec.source} | as {spec.source} | {spec.derivation} | "
                     f"{spec.shapes} |")
    return "\n".join(lines)


def _plain(value):
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_plain(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return f"{value:g}" if isinstance(value, float) else str(value)


def readme_block(folder) -> str:
    """The part of ``folder/README.md`` that this module writes: the settings of every set
    and the census of the files there."""
    return (f"{CENSUS_START}\n### How each set is made\n\n{settings_markdown()}\n\n"
            f"### Census (measured from the files)\n\n{census_markdown(folder)}\n"
            f"{CENSUS_END}")


CENSUS_START, CENSUS_END = "<!-- census: made by reference_runs.corpus -->", "<!-- /census -->"


def write_census(folder) -> Path:
    """Put :func:`readme_block` between the census markers of ``folder/README.md`` (added
    at the end of the file, or a new file, when they are not there)."""
    path = Path(folder) / "README.md"
    block = readme_block(folder)
    text = path.read_text() if path.exists() else "# Corpus of real learning curves\n"
    pattern = re.compile(re.escape(CENSUS_START) + ".*?" + re.escape(CENSUS_END), re.S)
    text = (pattern.sub(lambda _: block, text) if pattern.search(text)
            else f"{text.rstrip()}\n\n{block}\n")
    path.write_text(text)
    return path


# --------------------------------------------------------------------------------- CLI

def add_arguments(parser):
    parser.add_argument("--out", metavar="DIR", required=True, help="the corpus folder")
    parser.add_argument("--only", metavar="NAME", action="append",
                        choices=[*SETS, *DERIVED], help="make only this set (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny settings (two sizes, 20 epochs): a smoke test")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="train N sets at once, one process each (default 1)")
    parser.add_argument("--threads", type=int, default=1, metavar="T",
                        help="torch threads per process (default 1: these models are small, "
                             "and a second thread mostly waits when the cores are shared)")
    parser.add_argument("--census", action="store_true",
                        help="only rewrite the census in OUT/README.md from the files")


def _make(name, out, quick, threads):
    import torch

    torch.set_num_threads(threads)
    make_set(name, out, quick=quick, log=lambda line: print(line, flush=True))
    return name


def run(args):
    out = Path(args.out)
    if args.jobs < 1 or args.threads < 1:
        raise ScalingfitError(f"--jobs {args.jobs} --threads {args.threads}: both must be at "
                              "least 1.")
    if not args.census:
        names = args.only or [*SETS, *DERIVED]
        trained = [n for n in names if n in SETS]
        tick = time.perf_counter()
        print(f"making {len(names)} set(s) in {out}: {', '.join(names)}", flush=True)
        if args.jobs > 1 and len(trained) > 1:  # derived sets wait for their sources
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # The ViT and the ResNet take longest: started first, they end with the rest.
            trained.sort(key=lambda n: SETS[n].arch in ("vit", "resnet"), reverse=True)
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
                jobs = [pool.submit(_make, n, out, args.quick, args.threads) for n in trained]
                for job in as_completed(jobs):
                    print(f"{job.result()} done ({time.perf_counter() - tick:.0f} s so far)",
                          flush=True)
            names = [n for n in names if n not in trained]
        for name in names:
            _make(name, out, args.quick, args.threads)
            print(f"{name} done ({time.perf_counter() - tick:.0f} s so far)", flush=True)
        print(f"made the set(s) in {time.perf_counter() - tick:.0f} s", flush=True)
    print(f"census written to {write_census(out)}")
    return 0
