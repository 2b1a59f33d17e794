"""Which torch device a run trains on: ``auto`` (CUDA when torch sees a GPU), ``cpu``,
``cuda``, ``cuda:1``, ... — checked before any work, so a typo or a CPU-only torch is a
one-line error, not a traceback halfway through a sweep."""

from __future__ import annotations

from scalingfit.errors import ScalingfitError, require

__all__ = ["resolve_device"]


def resolve_device(name: str):
    torch = require("torch", "torch")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ScalingfitError(f"device {name!r} is not one torch knows; use auto, cpu, cuda "
                              "or cuda:N.") from err
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ScalingfitError(f"device {name!r} was asked for, but torch sees no CUDA "
                                  "device (no GPU here, or a CPU-only torch); use cpu or auto.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ScalingfitError(f"device {name!r}: torch sees only "
                                  f"{torch.cuda.device_count()} CUDA device(s).")
    return device
