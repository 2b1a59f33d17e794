"""A resumable sweep over architecture × dataset × P × seed; writes one canonical table.

    python -m reference_runs sweep sweep.yaml

``sweep.yaml``::

    out: sweeps/cifar10          # runs/<job>.csv, runs/<job>.ckpt, table.csv
    grid:
      arch: [cnn, resnet, vit]
      dataset: [cifar10]
      train_size: [1024, 4096, 16384]
      seed: [0, 1, 2, 3]
    settings: {epochs: 500, data_root: data}   # train settings for every run
    seeds_per_job: 4             # seeds of one (arch, dataset, P) trained together (vmap)
    executor: local              # local | submitit-local | slurm
    devices: [auto]              # local: one worker per device, e.g. [cuda:0, cuda:1]
    slurm: {partition: gpu, timeout_min: 240, gpus_per_node: 1}   # submitit parameters

Paths in it are relative to the file. Rerunning the command skips finished jobs (their
table exists) and resumes an interrupted one from its checkpoint, so no row is lost or
repeated; a finished job whose settings the file has since changed is an error, not a
stale row in the table. Run one sweep per folder at a time.
When every job is done, ``table.csv`` holds all runs, validated. On SLURM each job is
requeued after a timeout or preemption and resumes from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from itertools import product
from pathlib import Path

from scalingfit.errors import DataError, ScalingfitError
from scalingfit.progress import Progress

from . import config as settings
from .devices import resolve_device
from .models import model_config
from .train import TrainConfig, changed_settings, paths, resolve_config

__all__ = ["SweepConfig", "Job", "plan", "run_sweep", "TrainJob", "add_arguments", "run"]

GRID_KEYS = ("arch", "dataset", "train_size", "seed")
EXECUTORS = ("local", "submitit-local", "slurm")


@dataclasses.dataclass
class SweepConfig:
    out: str = "sweep"
    grid: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)
    seeds_per_job: int = 1
    executor: str = "local"
    devices: tuple = ("auto",)
    slurm: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Job:
    name: str
    config: TrainConfig

    @property
    def table(self) -> Path:
        return paths(self.config)[0]

    @property
    def checkpoint(self) -> Path:
        return paths(self.config)[2]

    @property
    def done(self) -> bool:
        return self.table.exists()

    def changed(self) -> str:
        """How the settings of a finished job differ from the sweep's now ("" if not)."""
        saved = paths(self.config)[1]
        return changed_settings(settings.read_yaml(saved), self.config) if saved.exists() else ""


def read_sweep(path) -> SweepConfig:
    sweep = settings.from_dict(SweepConfig, settings.read_yaml(path), source=str(path))
    missing = [k for k in GRID_KEYS if not sweep.grid.get(k)]
    unknown = sorted(set(sweep.grid) - set(GRID_KEYS))
    if missing or unknown:
        raise DataError(f"the grid needs non-empty lists for {', '.join(GRID_KEYS)}"
                        + (f"; missing {', '.join(missing)}" if missing else "")
                        + (f"; unknown {', '.join(unknown)}" if unknown else "") + ".",
                        source=path, column="grid",
                        fix="e.g. grid: {arch: [cnn], dataset: [digits], train_size: [64, "
                            "128], seed: [0, 1]}")
    repeated = {k: sorted({str(v) for v in sweep.grid[k] if sweep.grid[k].count(v) > 1})
                for k in GRID_KEYS if isinstance(sweep.grid[k], list)}
    if any(repeated.values()):
        raise DataError("the grid repeats "
                        + "; ".join(f"{k} {', '.join(v)}" for k, v in repeated.items() if v)
                        + ": each job would be trained twice.", source=path, column="grid",
                        fix="list each value once.")
    if sweep.executor not in EXECUTORS:
        raise DataError(f"executor {sweep.executor!r} is not one of {', '.join(EXECUTORS)}.",
                        source=path, column="executor")
    if sweep.seeds_per_job < 1:
        raise DataError("seeds_per_job must be at least 1.", source=path, column="seeds_per_job")
    for key in ("arch", "dataset", "train_size", "seeds", "seed", "out"):
        if key in sweep.settings:
            raise DataError(f"'{key}' belongs in the grid (or is set by the sweep), not in "
                            "settings.", source=path, column="settings")
    # Paths in the sweep file are relative to it.
    here = Path(path).parent
    sweep.out = str((here / sweep.out).resolve())
    if sweep.settings.get("data_root"):
        sweep.settings["data_root"] = str((here / sweep.settings["data_root"]).resolve())
    return sweep


def plan(sweep: SweepConfig) -> list[Job]:
    """Every job of the sweep, in grid order, with its resolved training settings."""
    grid = {k: sweep.grid[k] if isinstance(sweep.grid[k], list) else [sweep.grid[k]]
            for k in GRID_KEYS}
    jobs, runs = [], Path(sweep.out) / "runs"
    for arch, dataset, size in product(grid["arch"], grid["dataset"], grid["train_size"]):
        seeds = list(grid["seed"])
        for i in range(0, len(seeds), sweep.seeds_per_job):
            chunk = seeds[i:i + sweep.seeds_per_job]
            tag = f"seed{chunk[0]}" if len(chunk) == 1 else f"seeds{chunk[0]}-{chunk[-1]}"
            name = f"{arch}_{dataset}_P{size}_{tag}"
            flags = {"arch": arch, "dataset": dataset, "train_size": size, "seeds": chunk,
                     "out": str(runs / f"{name}.csv")}
            config = resolve_config(overrides=settings.merge(sweep.settings, flags))
            jobs.append(Job(name, config))
    return jobs


class TrainJob:
    """One job as a picklable callable for submitit; after a SLURM timeout or preemption it
    is resubmitted as is and resumes from its checkpoint."""

    def __init__(self, config: dict):
        self.config = config

    def __call__(self):
        from .train import train

        train(settings.from_dict(TrainConfig, self.config))
        return self.config["out"]

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


def run_sweep(sweep: SweepConfig, *, log=print):
    """Run the pending jobs of ``sweep``; write ``table.csv`` when all are done."""
    jobs = plan(sweep)
    for job in jobs:  # settings errors now, not one job at a time later
        model_config(job.config.arch, job.config.model)
    if sweep.executor == "local":
        for device in sweep.devices:
            resolve_device(device)
    stale = [f"{j.name} ({detail})" for j in jobs if j.done and (detail := j.changed())]
    if stale:
        raise ScalingfitError(
            f"{len(stale)} finished job(s) were trained with other settings than the sweep "
            f"file's now: {'; '.join(stale[:3])}{' ...' if len(stale) > 3 else ''}. Fix: "
            f"restore the settings, or delete those jobs' files in {Path(sweep.out) / 'runs'}"
            " (or use a new out folder) to train them again.")
    out = Path(sweep.out)
    out.mkdir(parents=True, exist_ok=True)
    settings.write_yaml(out / "sweep.resolved.yaml", dataclasses.asdict(sweep))
    pending = [j for j in jobs if not j.done]
    resumable = sum(j.checkpoint.exists() for j in pending)
    log(f"sweep {out}: {len(jobs)} jobs, {len(jobs) - len(pending)} done, {len(pending)} to "
        f"run ({resumable} resume from a checkpoint)")
    with Progress("sweep", "", len(pending), "job", stream=log) as progress:
        if sweep.executor == "local" and len(sweep.devices) <= 1:
            _run_inline(pending, sweep.devices[0] if sweep.devices else "auto", progress)
        elif sweep.executor == "local":
            _run_on_devices(pending, list(sweep.devices), progress)
        else:
            _run_submitit(pending, sweep, progress)
    failed = [j.name for j in jobs if not j.done]
    if failed:
        raise ScalingfitError(f"{len(failed)} job(s) did not finish: {', '.join(failed[:5])}"
                              f"{' ...' if len(failed) > 5 else ''}; see the messages above, "
                              "fix and rerun the sweep (finished jobs are kept).")
    return _write_table(jobs, out / "table.csv", log)


def _finished(progress, name, error=None):
    """One job more is over: done, or FAILED with the error's last line."""
    progress.advance(event=f"{name} done" if error is None else f"{name} FAILED ({error})")


def _run_inline(jobs, device, progress):
    from .train import train

    for job in jobs:
        config = dataclasses.replace(job.config, device=device)
        try:
            train(config, log=lambda line: print(f"  {line}", flush=True))
        except Exception as err:  # one failed job (a bad setting, out of memory) is reported
            _finished(progress, job.name, _why(err))  # and the others still run
            continue
        _finished(progress, job.name)


def _why(error) -> str:
    return str(error) if isinstance(error, ScalingfitError) else f"{type(error).__name__}: {error}"


_WORKER_DEVICE = None
_INTERRUPTED = False


def _worker_init(devices):
    global _WORKER_DEVICE
    _WORKER_DEVICE = devices.get()
    signal.signal(signal.SIGINT, _interrupt)


def _interrupt(signum, frame):
    global _INTERRUPTED
    _INTERRUPTED = True
    raise KeyboardInterrupt


def _worker_train(config: dict):
    from .train import train

    if _INTERRUPTED:  # a job handed to this worker before Ctrl-C reached the sweep
        raise KeyboardInterrupt
    config = settings.from_dict(TrainConfig, {**config, "device": _WORKER_DEVICE})
    train(config, log=lambda line: print(f"  [{_WORKER_DEVICE}] {line}", flush=True))


def _run_on_devices(jobs, devices, progress):
    """One worker process per device; each takes the next pending job when free."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    queue = context.Manager().Queue()
    for device in devices:
        queue.put(device)
    with ProcessPoolExecutor(len(devices), mp_context=context, initializer=_worker_init,
                             initargs=(queue,)) as pool:
        futures = {pool.submit(_worker_train, dataclasses.asdict(j.config)): j for j in jobs}
        try:
            for future in as_completed(futures):
                error = future.exception()
                if isinstance(error, KeyboardInterrupt):  # a worker saw the Ctrl-C first
                    raise error
                _finished(progress, futures[future].name, _why(error) if error else None)
        except KeyboardInterrupt:  # start nothing more; running jobs stop at the signal too
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_submitit(jobs, sweep, progress):
    from scalingfit.errors import require

    submitit = require("submitit", "sweep")
    cluster = "local" if sweep.executor == "submitit-local" else "slurm"
    executor = submitit.AutoExecutor(folder=Path(sweep.out) / "submitit", cluster=cluster)
    executor.update_parameters(name="reference_runs", **sweep.slurm)
    submitted = [(executor.submit(TrainJob(dataclasses.asdict(j.config))), j) for j in jobs]
    waiting = list(submitted)
    while waiting:
        for item in list(waiting):
            handle, job = item
            if handle.done():
                waiting.remove(item)
                error = handle.exception()
                _finished(progress, job.name,
                          str(error).strip().splitlines()[-1] if error else None)
        time.sleep(0.5 if waiting else 0)


def _write_table(jobs, path, log):
    from scalingfit.ingest.sources import load
    from scalingfit.ingest.table import write_table

    table = load([j.table for j in jobs]).drop(columns="source")
    write_table(table, path)
    log(f"wrote {path}: {table['run_id'].nunique()} runs, {len(table)} rows")
    return table


# ------------------------------------------------------------------------------- CLI

def add_arguments(parser):
    parser.add_argument("sweep", metavar="SWEEP.yaml", help="the sweep's settings")


def run(args):
    run_sweep(read_sweep(args.sweep))
    return 0
