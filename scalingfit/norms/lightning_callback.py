"""A PyTorch Lightning ``Callback`` that logs the norms at every validation.

>>> from scalingfit.norms import LightningNormCallback
>>> trainer = lightning.Trainer(callbacks=[LightningNormCallback()],
...                             logger=CSVLogger("logs", name=f"cnn_cifar10_P{P}_seed{seed}"))
>>> trainer.fit(model, train_loader, val_loader)          # doctest: +SKIP

At the end of each validation (not the sanity check) it computes
:func:`~scalingfit.norms.log_norms` of the module and logs each one with
``pl_module.log("lognorm/<name>", value)``, so the values go wherever the trainer's loggers
send them — ``CSVLogger``'s ``metrics.csv``, TensorBoard, W&B, MLflow — at the step of the
validation metrics, under names ``scalingfit ingest`` reads with no mapping (as
``lognorm_<name>``, natural logs). Log the test error in ``validation_step`` as
``val_error`` (or ``test/error``: a fraction, not an accuracy) and the rows are complete.

Needs ``lightning`` (or the older ``pytorch_lightning``): ``pip install 'scalingfit[lightning]'``.
"""

from __future__ import annotations

from ..errors import MissingDependencyError, require

__all__ = ["LightningNormCallback"]


def _callback_base():
    try:
        return require("lightning.pytorch", "lightning").Callback
    except MissingDependencyError:
        try:
            return require("pytorch_lightning", "lightning").Callback
        except MissingDependencyError:
            raise MissingDependencyError(
                "LightningNormCallback needs PyTorch Lightning (the 'lightning' package). "
                "Install it with: pip install 'scalingfit[lightning]'") from None


class LightningNormCallback(_callback_base()):
    """Log :func:`~scalingfit.norms.log_norms` of the module at the end of each validation.

    Parameters
    ----------
    prefix : str
        Names are ``<prefix><norm>``; the default ``"lognorm/"`` is read as
        ``lognorm_<norm>`` with no mapping.
    **norm_options
        Passed to :func:`~scalingfit.norms.log_norms` (``convention``, ``exact``, ...). The
        power-iteration warm start is kept between validations.
    """

    def __init__(self, *, prefix: str = "lognorm/", **norm_options):
        super().__init__()
        self.prefix = prefix
        self.norm_options = {"state": {}, **norm_options}

    def on_validation_epoch_end(self, trainer, pl_module):
        if trainer.sanity_checking:
            return  # the weights before any training step: not a point of the curve
        from .measure import log_norms

        for name, value in log_norms(pl_module, **self.norm_options).items():
            pl_module.log(f"{self.prefix}{name}", float(value), on_step=False, on_epoch=True,
                          logger=True, prog_bar=False)
