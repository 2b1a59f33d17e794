"""Log the norms of :mod:`scalingfit.norms` from your own training loop.

>>> from scalingfit.norm_logging import NormLogger, log_spaced_steps
>>> logger = NormLogger(model, steps=log_spaced_steps(500), csv="norms.csv",
...                     tensorboard="tb/run0")                          # doctest: +SKIP
>>> for epoch in range(501):                                            # doctest: +SKIP
...     train_one_epoch()
...     logger(epoch, test_error=evaluate())   # computes and writes only at chosen steps

Columns and keys are ``lognorm_<name>`` (natural logs, as the canonical table expects);
TensorBoard tags are ``lognorm/<name>``. Extra keyword values are logged alongside.
"""

from __future__ import annotations

import csv as csv_module
import math
from pathlib import Path

from .errors import ScalingfitError, require

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


class MetricWriter:
    """Send ``{name: value}`` at a step to a CSV file, TensorBoard and/or Weights & Biases.

    Parameters
    ----------
    csv : str or Path, optional
        Appended to (a header is written when the file is new); one row per call.
    tensorboard : str, Path or SummaryWriter, optional
        A log directory (a ``torch.utils.tensorboard.SummaryWriter`` is opened there) or an
        open writer. Names ``a_b`` become tags ``a/b`` for their first underscore.
    wandb : wandb Run or True, optional
        A run from ``wandb.init()``; ``True`` means the current ``wandb.run``.
    """

    def __init__(self, *, csv=None, tensorboard=None, wandb=None):
        self.csv_path = Path(csv) if csv is not None else None
        self._fields = None
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

    def log(self, step: int, values: dict):
        if self.csv_path is not None:
            self._write_csv(step, values)
        if self.tensorboard is not None:
            for name, value in values.items():
                self.tensorboard.add_scalar(name.replace("_", "/", 1), value, step)
        if self.wandb is not None:
            self.wandb.log(dict(values), step=step)

    def _write_csv(self, step, values):
        row = {"step": step, **values}
        if self._fields is None:
            exists = self.csv_path.exists() and self.csv_path.stat().st_size > 0
            if exists:
                with open(self.csv_path, newline="") as f:
                    self._fields = next(csv_module.reader(f))
            else:
                self._fields = list(row)
                self.csv_path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.csv_path, "w", newline="") as f:
                    csv_module.writer(f).writerow(self._fields)
        if set(row) != set(self._fields):
            raise ScalingfitError(f"{self.csv_path}: this row has columns {sorted(row)}, the "
                                  f"file has {sorted(self._fields)}; log the same values at "
                                  "every step, or use a new file.")
        with open(self.csv_path, "a", newline="") as f:
            csv_module.DictWriter(f, self._fields).writerow(row)

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
    **norm_options
        Passed to :func:`~scalingfit.norms.log_norms` (``convention``, ``exact``, ...). The
        power-iteration warm start is kept between calls.
    """

    def __init__(self, model, *, steps=None, every=None, csv=None, tensorboard=None,
                 wandb=None, **norm_options):
        self.model = model
        self.steps = set(steps) if steps is not None else None
        self.every = every
        self.norm_options = {"state": {}, **norm_options}
        self.writer = MetricWriter(csv=csv, tensorboard=tensorboard, wandb=wandb)

    def due(self, step: int) -> bool:
        if self.steps is not None:
            return step in self.steps
        return self.every is None or step % self.every == 0

    def __call__(self, step: int, **extra) -> dict | None:
        """Log the norms (and ``extra`` values) if ``step`` is due; return what was logged."""
        if not self.due(step):
            return None
        from .norms import log_norms

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
