"""The verdict on Δ = γ_conv − γ1·γ2, from a fit with a free convergence exponent.

- ``consistent``: the 90 % interval of Δ contains 0 *and* lies inside
  ``[−tolerance, +tolerance]``, i.e. the data exclude any discrepancy larger than the
  tolerance;
- ``inconsistent``: the 90 % interval excludes 0;
- ``inconclusive``: neither — the interval holds 0 but also discrepancies larger than the
  tolerance (too few runs, too short a range of P, too much noise).

The default tolerance, :data:`TOLERANCE` = 0.1, is absolute, in units of an exponent of
P. Why absolute: Δ is itself an exponent of P (γ1·γ2 and γ_conv are unchanged when the
norm is replaced by a power of it), and a discrepancy Δ makes the combined laws misjudge
ε* by a factor ``(P₂/P₁)^Δ`` between two sizes: 0.1 is 7 % per doubling of P, 26 % per
decade. Typical sweeps span one decade of P with seed scatter of a few per cent in ε*,
so discrepancies well below 0.1 are beyond what they can resolve, and a discrepancy of
0.1 or more is one a user predicting ε* would care about. For exponents γ1·γ2 much
smaller than 0.5, pass a smaller tolerance (e.g. a quarter of γ1·γ2).
"""

from __future__ import annotations

from ..errors import ScalingfitError
from ..fitting.result import describe

__all__ = ["verdict", "consistency", "TOLERANCE"]

TOLERANCE = 0.1  # largest |Δ| a "consistent" verdict allows; see the module docstring


def verdict(delta: dict, tolerance: float = TOLERANCE) -> str:
    """The verdict on the summary ``S`` of Δ's draws (its 90 % interval ``q05``–``q95``)."""
    if not tolerance > 0:
        raise ScalingfitError(f"the tolerance must be positive, got {tolerance}.")
    low, high = delta["q05"], delta["q95"]
    if low > 0 or high < 0:
        return "inconsistent"
    if -tolerance <= low and high <= tolerance:
        return "consistent"
    return "inconclusive"


def consistency(result, tolerance: float = TOLERANCE) -> list[dict]:
    """Δ = γ_conv − γ1·γ2 per group, and its verdict, from a free-exponent fit."""
    if result.settings.get("tie_convergence"):
        raise ScalingfitError("this fit ties γ_conv to γ1·γ2 (tie_convergence=True), so Δ is 0 "
                              "by construction; the verdict needs a fit with a free γ_conv.")
    delta = result.draws("gamma_conv") - result.draws("gamma_pred")
    out = []
    for g in range(len(result.group_names)):
        s = describe(delta[:, g])
        out.append({"delta": s, "verdict": verdict(s, tolerance), "tolerance": tolerance,
                    "gamma_pred": describe(result.draws("gamma_pred")[:, g]),
                    "gamma_conv": describe(result.draws("gamma_conv")[:, g])})
    return out
