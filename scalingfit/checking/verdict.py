"""The verdict on Δ = γ_conv − γ1·γ2, from a fit with a free convergence exponent, and
what Δ is made of.

- ``consistent``: the 90 % interval of Δ lies inside ``[−tolerance, +tolerance]``: the data
  exclude any discrepancy larger than the tolerance;
- ``inconsistent``: the 90 % interval lies wholly beyond it: the data show a discrepancy
  larger than the tolerance;
- ``inconclusive``: neither (too few runs, too short a range of P, too much noise).

Beside it, ``P(|Δ| < tolerance)`` and ``P(|Δ| > tolerance)``. A Δ that is not zero but
smaller than the tolerance (one a user predicting ε* would not care about) is not called
inconsistent, however precisely it is measured.

The default tolerance, :data:`TOLERANCE` = 0.1, is absolute, in units of an exponent of
P. Why absolute: Δ is itself an exponent of P (γ1·γ2 and γ_conv are unchanged when the
norm is replaced by a power of it), and a discrepancy Δ makes the combined laws misjudge
ε* by a factor ``(P₂/P₁)^Δ`` between two sizes: 0.1 is 7 % per doubling of P, 26 % per
decade. Typical sweeps span one decade of P with seed scatter of a few per cent in ε*,
so discrepancies well below 0.1 are beyond what they can resolve, and a discrepancy of
0.1 or more is one a user predicting ε* would care about. For exponents γ1·γ2 much
smaller than 0.5, pass a smaller tolerance (e.g. a quarter of γ1·γ2).

**What Δ is made of**, draw by draw (:mod:`scalingfit.fitting.model`): the runs' offsets
from the group's envelope may change with P (slope ``s``): the envelopes of different P do
not coincide, ``δ_envelope = −s``. The rest, ``δ_shape = Δ − δ_envelope``, is how the
optimum's height above its own envelope changes with P — less overfitting with more data
makes ε* fall faster than the envelope, ``δ_shape > 0`` — together with the envelope's
curvature between the optima (zero where it is straight there). The law "the best errors
lie on one envelope shared by all P" is ``δ_envelope = 0``; the combined law's prediction of
ε*(P) needs both parts small.
"""

from __future__ import annotations

import numpy as np

from ..errors import ScalingfitError
from ..fitting.result import describe

__all__ = ["verdict", "consistency", "delta_parts", "TOLERANCE"]

TOLERANCE = 0.1  # largest |Δ| a "consistent" verdict allows; see the module docstring


def verdict(delta: dict, tolerance: float = TOLERANCE) -> str:
    """The verdict on the summary ``S`` of Δ's draws (its 90 % interval ``q05``–``q95``)."""
    if not tolerance > 0:
        raise ScalingfitError(f"the tolerance must be positive, got {tolerance}.")
    low, high = delta["q05"], delta["q95"]
    if low > tolerance or high < -tolerance:
        return "inconsistent"
    if -tolerance <= low and high <= tolerance:
        return "consistent"
    return "inconclusive"


def delta_parts(result) -> dict[str, np.ndarray]:
    """Posterior draws, shape (draws, groups), of ``delta`` (Δ = γ_conv − γ1·γ2) and its
    two parts ``delta_envelope`` (−s, the offsets' slope in log P) and ``delta_shape``
    (Δ − δ_envelope), from a free-exponent fit (see the module docstring)."""
    if result.settings.get("tie_convergence"):
        raise ScalingfitError("this fit ties γ_conv to γ1·γ2 (tie_convergence=True), so Δ is 0 "
                              "by construction; the verdict needs a fit with a free γ_conv.")
    delta = result.draws("gamma_conv") - result.draws("gamma_pred")
    envelope = -result.draws("offset_slope")
    return {"delta": delta, "delta_envelope": envelope, "delta_shape": delta - envelope}


def consistency(result, tolerance: float = TOLERANCE) -> list[dict]:
    """Per group, from a free-exponent fit: Δ = γ_conv − γ1·γ2 and its two parts, the
    verdict, and the probabilities that |Δ| is within or beyond the tolerance."""
    parts = delta_parts(result)
    delta = parts["delta"]
    out = []
    for g in range(len(result.group_names)):
        s = describe(delta[:, g])
        within = float(np.mean(np.abs(delta[:, g]) < tolerance))
        out.append({"delta": s, "verdict": verdict(s, tolerance), "tolerance": tolerance,
                    "p_within_tolerance": within, "p_beyond_tolerance": 1.0 - within,
                    "delta_envelope": describe(parts["delta_envelope"][:, g]),
                    "delta_shape": describe(parts["delta_shape"][:, g]),
                    "gamma_pred": describe(result.draws("gamma_pred")[:, g]),
                    "gamma_conv": describe(result.draws("gamma_conv")[:, g])})
    return out
