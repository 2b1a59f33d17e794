"""Independent synthetic-data generator for the dynamical scaling laws of
D'Amico, Bocchi & Negri (arXiv 2505.13230).

Written without reference to the package's fitting code, so that the fitters can
be tested against ground truth built from different modelling choices.

Notation: x = log(lambda) (natural log of the norm-based complexity), u = x - x*,
where x* = log(lambda*) of the run.  Forms used (per (architecture, dataset) group):

* Law 2 (location of the optimum):  x*_run = log k2 + gamma2 log P + sig_lam * z,
  i.e. lambda* log-normally scattered (a few percent) around k2 P^gamma2.
* Law 1 (envelope):  eps_env(x) = A_P exp(-gamma1 x),  A_P = A (P/P_ref)^(-delta_eff),
  delta_eff = 0 for law="combined", = delta for law="inconsistent".
* Run trajectory before the plateau cap:  log eps_r(x) = log eps*_r + h(u), with
  h(0) = 0 its unique minimum, h(u) -> -gamma1 u + K for u -> -inf (so far from the
  optimum the run lies on its envelope; K < 0 is the constant by which the optimum
  sits above the envelope) and h rising for u > 0 (overfitting).  Hence
  log eps*_r = log A_P - K - gamma1 x*_run + sig_eps * z', i.e.
  eps* proportional to P^-(gamma1 gamma2 + delta_eff) up to seed noise.
  Shapes (w = w0/gamma1, d = d0/gamma1, beta = b0 gamma1):
    "smooth": h(u) = F(u+u0) - F(u0), F(v) = gamma1 w softplus(-v/w) + beta w softplus(v/w),
              u0 = w log(gamma1/beta)  (smooth departure, asymptotic rise slope beta);
    "kink":   h(u) = -gamma1 u - gamma1 d/2 for u <= -d;  gamma1 u^2/(2d) for -d < u <= 0;
              beta u for u > 0  (exact power law until -d, parabolic departure, kinked rise).
* Plateau: eps(x) = (eps_r^-s + c^-s)^(-1/s), c = chance = 1 - 1/classes, s = 8.
  This is monotone in eps_r, so the argmin stays exactly at x*; eps* (truth) is
  the capped value eps(x*), within 0.3 % of eps*_r (log-slope bias < 0.001);
  truth["runs"].log_eps_star_r holds the uncapped optimum, exactly on the law.
* Norm growth: epochs t = log-spaced distinct integers 1..max_epoch;
  x(t) = x0 + (x_end - x0) f(t), with f(t) the normalised cumulative sum of the
  increments of log(1 + t/3), each increment multiplied by exp(0.15 z_t) (seed jitter,
  monotone), then raised to a run power exp(0.08 z).  x0 (same for a whole group) lies
  lead_in/gamma1 below the earliest plateau end; x_end = log k2 + gamma2 log P +
  a/gamma1 with a ~ max(N(1.1, 0.35), 0.05) per run, so most runs pass their optimum
  and rise visibly, a few end near it.
* Observation: test_error = Binomial(n_test, eps(x(t))) / n_test.

Group dict keys: architecture, dataset, gamma1, gamma2, classes (or chance), log_k2
(or k2), eps0 (eps*_r on the law at P_ref; or A / log_A), max_epoch, optionally shape
and any of GROUP_DEFAULTS (w0=0.35, b0=0.7, d0=0.4, sig_lam=sig_eps=0.03, ...).
truth: truth[(architecture, dataset)] -> dict of true parameters (gamma1, gamma2,
gamma_pred = gamma1*gamma2, gamma_conv = gamma_pred + delta_eff, A, log_A, k2, log_k2,
chance, K, ...); truth["runs"] -> DataFrame with run_id, lam_star, log_lam_star,
lam_star_mean (= k2 P^gamma2), eps_star, log_eps_star_r, step_best_true, ...;
truth["true_error"] -> noiseless error aligned with the table's rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

DEFAULT_GROUPS = (
    dict(architecture="mlp", dataset="mnist", gamma1=2.5, gamma2=0.3, classes=10,
         eps0=0.05, log_k2=1.5, max_epoch=300),
    dict(architecture="cnn", dataset="cifar10", gamma1=0.8, gamma2=0.6, classes=10,
         eps0=0.38, log_k2=0.5, max_epoch=500),
    dict(architecture="resnet", dataset="cifar100", gamma1=1.2, gamma2=0.35, classes=100,
         eps0=0.6, log_k2=2.0, max_epoch=1000),
    # "product over layers" norm: log(lambda) ~ 288..308 (lambda* ~ 1e130..1e132)
    dict(architecture="deep_mlp", dataset="fashion_mnist", gamma1=0.35, gamma2=1.4,
         classes=10, eps0=0.12, log_k2=288.0, max_epoch=2000),
)
# Per-group knobs that a group dict may override.
GROUP_DEFAULTS = dict(P_ref=6000, w0=0.35, b0=0.7, d0=0.4, sig_lam=0.03, sig_eps=0.03,
                      plateau_sharpness=8.0, lead_in=1.5, after_mean=1.1, after_sd=0.35)
SHAPES = ("smooth", "kink")


def _softplus(z):
    return np.logaddexp(0.0, z)


def _h(u, g1, shape, w0, b0, d0):
    """Departure/rise profile h(u) (min 0 at u=0) and its envelope offset K."""
    u = np.asarray(u, dtype=float)
    beta = b0 * g1
    if shape == "smooth":
        w = w0 / g1
        u0 = w * np.log(g1 / beta)
        def F(v):
            return g1 * w * _softplus(-v / w) + beta * w * _softplus(v / w)
        return F(u + u0) - F(u0), float(-g1 * u0 - F(u0))
    if shape == "kink":
        d = d0 / g1
        h = np.where(u <= -d, -g1 * u - g1 * d / 2,
                     np.where(u <= 0, g1 * u ** 2 / (2 * d), beta * u))
        return h, -d0 / 2
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def _log_softmin(log_a, log_c, s):
    """log of (a^-s + c^-s)^(-1/s): caps the error at the chance level c."""
    return -np.logaddexp(-s * log_a, -s * log_c) / s


def _epochs(n, max_epoch):
    out, prev = [], 0
    for v in np.geomspace(1, max_epoch, n):
        prev = max(int(round(v)), prev + 1)
        out.append(prev)
    return np.array(out, dtype=int)


def true_curve(log_lam, run, group_truth):
    """Noiseless test error at log(lambda) for a run (row of truth['runs'])."""
    g = group_truth
    h, _ = _h(np.asarray(log_lam) - run["log_lam_star"], g["gamma1"], g["shape"],
              g["w0"], g["b0"], g["d0"])
    return np.exp(_log_softmin(run["log_eps_star_r"] + h, np.log(g["chance"]),
                               g["plateau_sharpness"]))


def generate(*, groups=None, train_sizes=(6000, 9000, 12000, 18000, 24000, 32000, 40000, 48000),
             n_seeds=6, n_epochs=40, n_test=10_000, law="combined", delta=0.2,
             shape="smooth", seed=0):
    """Return (table, truth); see the module docstring for the forms used."""
    if law not in ("combined", "inconsistent"):
        raise ValueError(f"unknown law {law!r}")
    rng = np.random.default_rng(seed)
    groups = [dict(GROUP_DEFAULTS, **g) for g in (DEFAULT_GROUPS if groups is None else groups)]
    sizes = np.asarray(train_sizes, dtype=int)
    d_eff = delta if law == "inconsistent" else 0.0
    tables, runs = [], []
    truth = {"law": law, "shape": shape, "delta": d_eff, "n_test": n_test}
    for g in groups:
        g1, g2, shp = float(g["gamma1"]), float(g["gamma2"]), g.get("shape", shape)
        arch, ds = g["architecture"], g["dataset"]
        chance = float(g.get("chance", 1.0 - 1.0 / g.get("classes", 10)))
        log_k2 = float(g["log_k2"]) if "log_k2" in g else float(np.log(g["k2"]))
        _, K = _h(0.0, g1, shp, g["w0"], g["b0"], g["d0"])
        x_ref = log_k2 + g2 * np.log(g["P_ref"])
        if "log_A" in g:
            log_A = float(g["log_A"])
        elif "A" in g:
            log_A = float(np.log(g["A"]))
        else:  # eps0 = eps* on the law at P_ref (before plateau cap)
            log_A = float(np.log(g["eps0"]) + K + g1 * x_ref)
        log_A_P = log_A - d_eff * np.log(sizes / g["P_ref"])
        # group-wide initial norm: below the earliest end of the plateau
        x0 = np.min((log_A_P - np.log(chance)) / g1) - g["lead_in"] / g1
        steps = _epochs(n_epochs, g.get("max_epoch", 1000))
        base_inc = np.diff(np.concatenate([[0.0], np.log1p(steps / 3.0)]))
        gt = dict(architecture=arch, dataset=ds, gamma1=g1, gamma2=g2,
                  gamma_pred=g1 * g2, gamma_conv=g1 * g2 + d_eff, delta=d_eff,
                  A=float(np.exp(log_A)), log_A=log_A, k2=float(np.exp(log_k2)),
                  log_k2=log_k2, chance=chance, K=K, shape=shp, log_lam0=float(x0),
                  steps=steps, **{k: g[k] for k in GROUP_DEFAULTS})
        truth[(arch, ds)] = gt
        for P, lAP in zip(sizes, log_A_P):
            x_mean = log_k2 + g2 * np.log(P)
            for s in range(n_seeds):
                x_star = x_mean + g["sig_lam"] * rng.standard_normal()
                le_r = lAP - K - g1 * x_star + g["sig_eps"] * rng.standard_normal()
                after = max(rng.normal(g["after_mean"], g["after_sd"]), 0.05)
                x_end = x_mean + after / g1
                inc = base_inc * np.exp(0.15 * rng.standard_normal(len(steps)))
                frac = (np.cumsum(inc) / inc.sum()) ** np.exp(0.08 * rng.standard_normal())
                x = x0 + (x_end - x0) * frac
                run = dict(run_id=f"{arch}|{ds}|P{P}|s{s}", architecture=arch, dataset=ds,
                           train_size=int(P), seed=s, log_lam_star=float(x_star),
                           log_lam_star_mean=float(x_mean), log_eps_star_r=float(le_r))
                eps = true_curve(x, run, gt)
                run["eps_star"] = float(true_curve(x_star, run, gt))
                run["lam_star"] = float(np.exp(x_star))
                run["lam_star_mean"] = float(np.exp(x_mean))
                run["step_best_true"] = int(steps[np.argmin(eps)])
                run["log_lam_end"] = float(x[-1])
                runs.append(run)
                tables.append(pd.DataFrame(dict(
                    run_id=run["run_id"], architecture=arch, dataset=ds, train_size=int(P),
                    seed=s, step=steps, test_error=rng.binomial(n_test, eps) / n_test,
                    norm_spectral_complexity=np.exp(x), lognorm_spectral_complexity=x,
                    n_test=int(n_test), true_error=eps)))
    table = pd.concat(tables, ignore_index=True)
    truth["true_error"] = table.pop("true_error").to_numpy()  # aligned with table rows
    truth["runs"] = pd.DataFrame(runs)
    return table, truth
