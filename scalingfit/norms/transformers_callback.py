"""A Hugging Face ``TrainerCallback`` that logs the norms with every evaluation.

>>> from scalingfit.norms import TransformersNormCallback
>>> trainer = transformers.Trainer(model, args, train_dataset=train, eval_dataset=test,
...                                compute_metrics=error_rate,   # returns {"error": ...}
...                                callbacks=[TransformersNormCallback()])
>>> trainer.train()                                        # doctest: +SKIP

Each evaluation's log entry gets :func:`~scalingfit.norms.log_norms` of the model as
``eval_lognorm_<name>`` (natural logs), beside ``eval_loss`` and ``eval_error``: so they are
in the ``log_history`` of every ``trainer_state.json`` and go to every logger that
``report_to`` names — TensorBoard and W&B (as ``eval/lognorm_<name>``), MLflow (as
``eval_lognorm_<name>``) — all read by ``scalingfit ingest`` with no mapping. Return the
test error from ``compute_metrics`` as ``error`` (a fraction, not an accuracy).

Run metadata given as ``run={"architecture": ..., "dataset": ..., "train_size": ...,
"seed": ...}`` is saved with the callback's state in ``trainer_state.json``
(``stateful_callbacks``), where ``scalingfit ingest`` takes it, so the output directory
reads with no mapping at all; the other loggers get it from a run-name template (name the
output directory, or ``run_name``, e.g. ``cnn_cifar10_P4000_seed0``).

The Trainer runs the ``report_to`` loggers' callbacks before the ones it is given, so
this callback, when it first runs, moves itself in front of them, so that they log the
entry with its norms.

Needs ``transformers``: ``pip install 'scalingfit[huggingface]'``.
"""

from __future__ import annotations

import numbers
import sys

from ..errors import ScalingfitError, require

__all__ = ["TransformersNormCallback"]

_callbacks = require("transformers.trainer_callback", "huggingface")
_SKIP = ("train_", "total_flos")


class TransformersNormCallback(_callbacks.TrainerCallback, _callbacks.ExportableState):
    """Add :func:`~scalingfit.norms.log_norms` of the model to every evaluation's logs.

    Parameters
    ----------
    prefix : str
        Names are ``<prefix><norm>``; the default ``"eval_lognorm_"`` is read as
        ``lognorm_<norm>`` with no mapping (``eval/lognorm_<norm>`` in TensorBoard and W&B).
    run : dict, optional
        Run metadata (``architecture``, ``dataset``, ``train_size``, ``seed``, ...: strings
        and numbers), saved in ``trainer_state.json`` and read from there as the run's.
    **norm_options
        Passed to :func:`~scalingfit.norms.log_norms` (``convention``, ``exact``, ...). The
        power-iteration warm start is kept between evaluations.
    """

    def __init__(self, *, prefix: str = "eval_lognorm_", run: dict | None = None,
                 **norm_options):
        self.prefix = prefix
        self.run = dict(run or {})
        odd = [k for k, v in self.run.items()
               if isinstance(v, bool) or not isinstance(v, (str, numbers.Real))]
        if odd:
            raise ScalingfitError(f"run metadata must be strings or numbers; {odd[0]!r} is "
                                  f"{type(self.run[odd[0]]).__name__}.")
        self.norm_options = {"state": {}, **norm_options}
        self._placed = False
        self._last_step = None

    def state(self) -> dict:
        """What ``trainer_state.json`` keeps of this callback (``ExportableState``)."""
        return {"args": {"prefix": self.prefix, "run": self.run}, "attributes": {}}

    def on_init_end(self, args, state, control, **kwargs):
        self._place_before_loggers()

    def on_train_begin(self, args, state, control, **kwargs):
        self._place_before_loggers()  # added with trainer.add_callback after __init__

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if logs is None or model is None or not _is_evaluation(logs):
            return
        if self._last_step == state.global_step:
            return  # a second evaluation set at the same step: the norms are logged once
        self._last_step = state.global_step
        from .measure import log_norms

        norms = {f"{self.prefix}{name}": float(value)
                 for name, value in log_norms(model, **self.norm_options).items()}
        # the Trainer appended a copy of this entry to its log history before on_log
        entry = state.log_history[-1] if state.log_history else None
        if entry is not None and entry.get("step") == state.global_step and set(logs) <= set(entry):
            entry.update(norms)
        logs.update(norms)  # and the loggers after this callback see them

    def _place_before_loggers(self):
        """Move this callback in front of the ``report_to`` loggers' callbacks.

        The Trainer calls its callbacks in order, the loggers (``report_to``) before the
        callbacks it was given, and gives them no handle on it; the list is found as the
        caller's (the Trainer's ``CallbackHandler``, which is calling this one).
        """
        if self._placed:
            return
        self._placed = True
        callbacks = _calling_callback_list(self)
        if callbacks is None:
            return
        loggers = _logger_callback_types()
        first = next((i for i, cb in enumerate(callbacks) if isinstance(cb, loggers)), None)
        mine = callbacks.index(self)
        if first is not None and first < mine:
            callbacks.insert(first, callbacks.pop(mine))


def _is_evaluation(logs: dict) -> bool:
    """An evaluation's entry: ``eval_*`` keys (``<prefix>_runtime`` from any prefix), no
    training-loop keys."""
    if "loss" in logs or "learning_rate" in logs:
        return False
    return any(key.endswith("_runtime") and not key.startswith(_SKIP) for key in logs) or \
        any(key.startswith("eval_") for key in logs)


def _calling_callback_list(callback):
    """The list of callbacks that holds ``callback``, from the frames calling it."""
    frame = sys._getframe(2)
    for _ in range(4):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        callbacks = getattr(owner, "callbacks", None)
        if isinstance(callbacks, list) and any(cb is callback for cb in callbacks):
            return callbacks
        frame = frame.f_back
    return None


def _logger_callback_types() -> tuple:
    integrations = require("transformers.integrations", "huggingface")
    mapping = getattr(integrations, "INTEGRATION_TO_CALLBACK", {})
    return tuple({cls for cls in mapping.values() if isinstance(cls, type)})
