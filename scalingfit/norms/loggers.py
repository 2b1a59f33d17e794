"""Log the norms of :mod:`scalingfit.norms` from your own training loop: to CSV,
TensorBoard or W&B, in the names ``scalingfit ingest`` reads with no mapping.

>>> from scalingfit.norms import NormLogger, log_spaced_steps
>>> name = f"mlp_digits_P{train_size}_seed{seed}"
>>> logger = NormLogger(model, steps=log_spaced_steps(500), csv=f"norms/{name}.csv",
...                     tensorboard=f"tb/{name}",
...                     run=dict(run_id=name, architecture="mlp", dataset="digits",
...                              train_size=train_size, seed=seed))   # doctest: +SKIP
>>> for epoch in range(501):                                            # doctest: +SKIP
...     train_one_epoch()
...     logger(epoch, test_error=evaluate())   # computes and writes only at chosen steps

Then ``scalingfit ingest norms/`` (or ``scalingfit.load("norms/")``) reads the CSV files
with no mapping: every row holds the ``run`` metadata (``run_id`` defaults to the file's
stem), ``step``, ``lognorm_<name>`` (natural logs, as the canonical table expects) and the
extra keyword values. TensorBoard tags are ``lognorm/<name>``, ``test/error`` and the
other names as given (numeric values only). In W&B the step is logged as the value
``epoch`` (not as W&B's own step, which per-iteration ``run.log`` calls move ahead) and the
``run`` metadata goes to the run's config; ``scalingfit ingest`` reads both with no mapping.
"""

from __future__ import annotations

import csv as csv_module
import math
import numbers
from pathlib import Path

from ..errors import ScalingfitError, require

__all__ = ["log_spaced_steps", "MetricWriter", "NormLogger"]


def log_spaced_steps(last: int, n: int = 50, *, first: int = 0) -> list[int]:
    """About ``n`` integer steps spaced evenly in log between 1 and ``last``, plus ``first``.

    Rounding merges the early ones, so there are fewer than ``n`` when ``last`` is small
    (every step from 1 to ``last`` when ``last <= n``).
    """
    if last < 1:
        return [first] if first <= last else []
    steps = {first, last}
    for i in range(n):
        steps.add(round(math.exp(math.log(last) * i / max(n - 1, 1))))
    return sorted(s for s in steps if first <= s <= last)


#: The key the step goes under in W&B (a value of the row, not W&B's own ``_step``).
WANDB_STEP_KEY = "epoch"


def _is_number(value) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Number):
        return True
    return hasattr(value, "item") and getattr(value, "ndim", 1) == 0  # 0-d tensor/array


#: TensorBoard's usual tags for these names, which ``scalingfit ingest`` recognises.
_TB_TAGS = {"test_error": "test/error", "train_error": "train/error",
            "test_loss": "test/loss", "train_loss": "train/loss"}


def _tag(name: str) -> str:
    """TensorBoard tag of a value: ``lognorm_<name>`` -> ``lognorm/<name>``, ``test_error``
    -> ``test/error`` (and train_error, test_loss, train_loss); any other name as it is."""
    if name.startswith("lognorm_"):
        return "lognorm/" + name[len("lognorm_"):]
    return _TB_TAGS.get(name, name)


class MetricWriter:
    """Send ``{name: value}`` at a step to a CSV file, TensorBoard and/or Weights & Biases.

    Parameters
    ----------
    csv : str or Path, optional
        One row per call: ``run_id``, the other ``run`` metadata, ``step``, then the
        values. A header is written when the file is new; an existing file is appended to,
        but only with later steps: a rerun of the script (a step at or before the file's
        last one) is an error, so two runs never merge into one file.
    tensorboard : str, Path or SummaryWriter, optional
        A log directory (a ``torch.utils.tensorboard.SummaryWriter`` is opened there) or an
        open writer. Tags are the names, except ``lognorm_<name>`` -> ``lognorm/<name>``
        and ``test_error`` -> ``test/error`` (likewise ``train_error``, ``test_loss``,
        ``train_loss``), all of which ``scalingfit ingest`` recognises.
        Only numeric values are written (metadata such as a string ``run_id`` is not a
        scalar).
    wandb : wandb Run or True, optional
        A run from ``wandb.init()``; ``True`` means the current ``wandb.run``. Each call is
        one ``run.log({..., "epoch": step})`` *without* W&B's ``step=``: W&B drops rows whose
        ``step=`` is behind its own counter, which any per-iteration ``run.log`` in your loop
        moves ahead. ``scalingfit ingest`` takes ``epoch`` as the step with no mapping.
        Non-numeric values are not logged; ``run`` metadata goes to the run's config.
    run : dict, optional
        Run metadata (``run_id``, ``architecture``, ``dataset``, ``train_size``, ``seed``,
        ...) written as constant columns of every CSV row, so that ``scalingfit ingest`` /
        ``fit`` read the file with no mapping. ``run_id`` defaults to the CSV file's stem.
    """

    def __init__(self, *, csv=None, tensorboard=None, wandb=None, run=None):
        self.csv_path = Path(csv) if csv is not None else None
        self.run = {k: v for k, v in dict(run or {}).items() if v is not None}
        if self.csv_path is not None:
            self.run.setdefault("run_id", self.csv_path.stem)
            self.run = {"run_id": self.run.pop("run_id"), **self.run}
        self._fields = None
        self._last_step = None
        self._own_writer = False
        self.tensorboard = tensorboard
        if tensorboard is not None and isinstance(tensorboard, (str, Path)):
            require("tensorboard", "tensorboard")
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard, self._own_writer = SummaryWriter(str(tensorboard)), True
        if wandb is True:
            wandb = require("wandb", "wandb").run
            if wandb is None:
                raise ScalingfitError("wandb=True but no W&B run is active; call wandb.init() "
                                      "first or pass the run.")
        self.wandb = wandb
        if wandb is not None:
            config = {k: v for k, v in self.run.items() if k != "run_id"}
            if config:
                wandb.config.update(config, allow_val_change=True)

    def log(self, step: int, values: dict):
        if self.csv_path is not None:
            self._write_csv(step, values)
        numeric = {name: value for name, value in values.items() if _is_number(value)}
        if self.tensorboard is not None:
            for name, value in numeric.items():
                self.tensorboard.add_scalar(_tag(name), value, step)
        if self.wandb is not None:
            self.wandb.log({**numeric, WANDB_STEP_KEY: step})

    def _write_csv(self, step, values):
        clash = sorted(set(values) & (set(self.run) | {"step"}))
        if clash:
            raise ScalingfitError(f"{self.csv_path}: {clash} given both as a logged value and "
                                  "as run metadata (or the step); give each once.")
        row = {**self.run, "step": step, **values}
        if self._fields is None:
            exists = self.csv_path.exists() and self.csv_path.stat().st_size > 0
            if exists:
                with open(self.csv_path, newline="") as f:
                    rows = list(csv_module.reader(f))
                self._fields = rows[0]
                if "step" in self._fields and len(rows) > 1:
                    try:
                        self._last_step = float(rows[-1][self._fields.index("step")])
                    except (ValueError, IndexError):
                        self._last_step = None
            else:
                self._fields = list(row)
                self.csv_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.csv_path, "w", newline="") as f:
                    csv_module.writer(f).writerow(self._fields)
        if set(row) != set(self._fields):
            raise ScalingfitError(f"{self.csv_path}: this row has columns {sorted(row)}, the "
                                  f"file has {sorted(self._fields)}; log the same values at "
                                  "every step, or use a new file.")
        if self._last_step is not None and step <= self._last_step:
            raise ScalingfitError(f"{self.csv_path}: step {step} is not after the file's last "
                                  f"step {self._last_step:g} (a rerun?); use a new file or "
                                  "delete this one, so that two runs are not merged.")
        with open(self.csv_path, "a", newline="") as f:
            csv_module.DictWriter(f, self._fields).writerow(row)
        self._last_step = step

    def close(self):
        if self._own_writer:
            self.tensorboard.close()


class NormLogger:
    """Compute :func:`~scalingfit.norms.log_norms` at chosen steps and log them.

    Parameters
    ----------
    model : torch.nn.Module
    steps : iterable of int, optional
        Steps at which to log (e.g. :func:`log_spaced_steps`).
    every : int, optional
        Or: log when ``step % every == 0``. With neither, every call logs.
    csv, tensorboard, wandb
        Where to send the values; see :class:`MetricWriter`.
    run : dict, optional
        Run metadata (``run_id``, ``architecture``, ``dataset``, ``train_size``, ``seed``)
        written in every CSV row and to the W&B config; see :class:`MetricWriter`.
    **norm_options
        Passed to :func:`~scalingfit.norms.log_norms` (``convention``, ``exact``, ...). The
        power-iteration warm start is kept between calls.
    """

    def __init__(self, model, *, steps=None, every=None, csv=None, tensorboard=None,
                 wandb=None, run=None, **norm_options):
        self.model = model
        self.steps = set(steps) if steps is not None else None
        self.every = every
        self.norm_options = {"state": {}, **norm_options}
        self.writer = MetricWriter(csv=csv, tensorboard=tensorboard, wandb=wandb,
                                   run=run)

    def due(self, step: int) -> bool:
        if self.steps is not None:
            return step in self.steps
        return self.every is None or step % self.every == 0

    def __call__(self, step: int, **extra) -> dict | None:
        """Log the norms (and ``extra`` values) if ``step`` is due; return what was logged."""
        if not self.due(step):
            return None
        from .measure import log_norms

        values = {f"lognorm_{k}": v for k, v in log_norms(self.model,
                                                          **self.norm_options).items()}
        values.update(extra)
        self.writer.log(step, values)
        return values

    def close(self):
        self.writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
