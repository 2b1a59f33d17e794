"""``FitResult``: the posterior (ArviZ InferenceData) with what is needed to read it.

Groups of the InferenceData:

- ``posterior``, ``sample_stats``: from the sampler; exponents have dims ``group``.
- ``constant_data``: the stage-1 summaries per ``run`` (``z``: γ̂, x̂*, ŷ* in fitting
  units, ``z_cov``, ``censored``, ``train_size``, ``group_index``, ...) and per ``group``
  (how log λ was standardised, the fitted curve shape), so curves can be redrawn.
- ``observed_data``: the rows that were fitted (``log_norm``, ``test_error``, ``row_run``).

Provenance (settings, package versions, a hash of the table, time) is stamped in the
attributes and round-trips through netCDF.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from importlib import metadata
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from .atomic import atomic_path
from .model import PARAMS

__all__ = ["FitResult", "exponent_text", "stat_summary"]


def stat_summary(values) -> dict:
    """``{"mean", "median", "sd", "q05", "q95"}`` of posterior draws (the docs/design.md §4 S)."""
    values = np.asarray(values, float).ravel()
    q05, median, q95 = np.quantile(values, [0.05, 0.5, 0.95])
    return {"mean": float(values.mean()), "median": float(median),
            "sd": float(values.std(ddof=1)), "q05": float(q05), "q95": float(q95)}


def _versions() -> dict:
    versions = {"python": platform.python_version()}
    for package in ("scalingfit", "pymc", "pytensor", "arviz", "numpy", "scipy", "pandas",
                    "nutpie"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            if package == "scalingfit":
                from . import __version__

                versions[package] = __version__
    return versions


def exponent_text(s: dict) -> str:
    """``median [q05, q95]`` of an exponent, to three decimals (exponents are of order 1)."""
    return f"{s['median']:.3f} [{s['q05']:.3f}, {s['q95']:.3f}]"


class FitResult:
    """The outcome of :func:`scalingfit.fit`.

    Attributes
    ----------
    idata : arviz.InferenceData
    settings, diagnostics, meta : dict
        How it was fitted, whether the sampler converged, and provenance.
    """

    def __init__(self, idata, *, settings: dict, diagnostics: dict, meta: dict,
                 table: pd.DataFrame | None = None):
        self.idata, self.settings, self.diagnostics, self.meta = idata, settings, diagnostics, meta
        self.fitted_table = table  # the canonical table fitted, so a check can refit parts

    # ----------------------------------------------------------------- construction
    @classmethod
    def build(cls, idata, *, data, summaries, table, groups, settings, diagnostics, timings,
              notes):
        """Attach summaries, fitted rows and provenance to the sampler's InferenceData."""
        labels = list(idata.posterior.coords["group"].values)
        runs = list(data.run_ids)
        group_info = []
        for group in groups:
            rows = table[table["run_id"].isin(group.runs.index)]
            info = dict(zip(settings["group_by"], group.label))
            for key in ("architecture", "dataset"):
                info.setdefault(key, "+".join(map(str, sorted(rows[key].unique()))))
            group_info.append(info)
        constant = xr.Dataset(
            {
                "z": (("run", "summary"), data.z),
                "z_cov": (("run", "summary", "summary_"), data.cov),
                "loading": (("run", "summary", "shape"), data.loading),
                "censored": ("run", data.censored),
                "x_last": ("run", data.x_last),
                "y_last": ("run", data.y_last),
                "y_last_sd": ("run", data.y_last_sd),
                "x_first": ("run", np.concatenate([s.x_first for s in summaries])),
                "ell": ("run", data.ell),
                "level_index": ("run", data.level),
                "group_index": ("run", data.group),
                "train_size": ("run", np.exp(data.ell + data.ell_center[data.group]).round()),
                "beta": ("run", np.concatenate([s.beta for s in summaries])),
                "reach": ("run", np.concatenate([s.reach for s in summaries])),
                "x_scale": ("group", data.x_scale),
                "x_center": ("group", data.x_center),
                "ell_center": ("group", data.ell_center),
                "seeded_levels": ("group", data.seeded_levels),
                "sharpness": ("group", [s.sharpness for s in summaries]),
                "log_chance": ("group", [s.log_chance for s in summaries]),
                "plateau_sharpness": ("group", [s.plateau_sharpness for s in summaries]),
                "sigma0": ("group", [s.sigma0 for s in summaries]),
            },
            coords={"run": runs, "group": labels, "summary": ["gamma", "x_star", "y_star"],
                    "summary_": ["gamma", "x_star", "y_star"]},
        )
        row_x, row_y, row_run, row_fit = [], [], [], []
        offset = 0
        for group, s in zip(groups, summaries):
            curves = group.curves
            row_x.append(curves.x * group.x_scale + group.x_center)
            row_y.append(np.exp(curves.y))
            row_run.append(curves.run + offset)
            row_fit.append(s.fitted)
            offset += curves.n_runs
        observed = xr.Dataset({
            "log_norm": ("row", np.concatenate(row_x)),
            "test_error": ("row", np.concatenate(row_y)),
            "fitted_log_error": ("row", np.concatenate(row_fit)),
            "row_run": ("row", np.concatenate(row_run)),
        })
        idata.add_groups(constant_data=constant, observed_data=observed)
        table_hash = hashlib.sha256(
            pd.util.hash_pandas_object(table.drop(columns="source", errors="ignore"),
                                       index=False).to_numpy().tobytes()).hexdigest()[:16]
        meta = {"method": settings["method"], "groups": group_info, "versions": _versions(),
                "table_sha256_16": table_hash, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "n_rows": int(len(table)), "timings": timings, "notes": notes}
        result = cls(idata, settings=settings, diagnostics=diagnostics, meta=meta, table=table)
        result._stamp()
        return result

    def _stamp(self):
        for key, value in (("settings", self.settings), ("diagnostics", self.diagnostics),
                           ("meta", self.meta)):
            self.idata.posterior.attrs[f"scalingfit_{key}"] = json.dumps(value, default=str)

    # ----------------------------------------------------------------- reading
    @property
    def converged(self) -> bool:
        """Whether R-hat, ESS and divergences pass the limits in ``scalingfit.rc``."""
        return bool(self.diagnostics["passed"])

    @property
    def groups(self) -> list[dict]:
        return self.meta["groups"]

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of a parameter, shape (chains·draws, groups)."""
        values = self.idata.posterior[name]
        return values.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()

    def summary_data(self):
        """The stage-1 summaries as the model reads them (:class:`scalingfit.model.SummaryData`)."""
        from .model import SummaryData

        c = self.idata.constant_data
        return SummaryData(
            groups=[tuple(g.split(" / ")) for g in c["group"].values],
            run_ids=c["run"].to_numpy(), group=c["group_index"].to_numpy(),
            level=c["level_index"].to_numpy(), ell=c["ell"].to_numpy(), z=c["z"].to_numpy(),
            cov=c["z_cov"].to_numpy(), loading=c["loading"].to_numpy(),
            censored=c["censored"].to_numpy().astype(bool), x_last=c["x_last"].to_numpy(),
            y_last=c["y_last"].to_numpy(), y_last_sd=c["y_last_sd"].to_numpy(),
            x_scale=c["x_scale"].to_numpy(), x_center=c["x_center"].to_numpy(),
            ell_center=c["ell_center"].to_numpy(),
            seeded_levels=c["seeded_levels"].to_numpy().astype(bool))

    def summary(self) -> dict:
        """The ``summary.json`` content (docs/design.md §4), with extra keys."""
        constant = self.idata.constant_data
        groups = []
        for g, info in enumerate(self.groups):
            mine = constant["group_index"].to_numpy() == g
            entry = {"architecture": str(info["architecture"]), "dataset": str(info["dataset"]),
                     "n_runs": int(mine.sum()),
                     "params": {p: stat_summary(self.draws(p)[:, g]) for p in PARAMS}}
            entry["group"] = {k: str(v) for k, v in info.items()}
            entry["n_censored"] = int(constant["censored"].to_numpy()[mine].sum())
            entry["train_sizes"] = sorted(int(p) for p in
                                          np.unique(constant["train_size"].to_numpy()[mine]))
            if "reach" in constant:  # (absent from results saved before it was added)
                entry["envelope_reach"] = round(
                    float(np.median(constant["reach"].to_numpy()[mine])), 3)
            groups.append(entry)
        return {"norm": self.settings["norm"], "groups": groups,
                "diagnostics": dict(self.diagnostics), "versions": self.meta["versions"],
                "method": self.meta["method"], "settings": self.settings,
                "timings": self.meta["timings"], "notes": self.meta["notes"],
                "table_sha256_16": self.meta["table_sha256_16"]}

    def table(self) -> str:
        """A plain-text table of the exponents: median and 90 % interval per group (the
        level stated; a combined-law fit says so)."""
        summary = self.summary()
        header = f"{'group':<28}{'runs':>5}" + "".join(f"{p:>24}" for p in PARAMS)
        lines = [f"norm: {summary['norm']}; posterior median [90 % interval]"]
        if self.settings.get("tie_convergence"):
            lines.append("combined-law model (--tie-convergence): gamma_conv is tied to "
                         "gamma1*gamma2, so their columns are the same")
        lines += [header, "-" * len(header)]
        for group in summary["groups"]:
            name = f"{group['architecture']} / {group['dataset']}"
            cells = "".join(exponent_text(s).rjust(24) for s in group["params"].values())
            lines.append(f"{name:<28}{group['n_runs']:>5}{cells}")
        return "\n".join(lines)

    def diagnostics_line(self) -> str:
        d = self.diagnostics
        verdict = "converged" if d["passed"] else "FAILED its diagnostics — do not trust it"
        return (f"sampler {verdict}: max R-hat {d['rhat_max']:.4f}, min bulk ESS "
                f"{d['ess_bulk_min']:.0f}, min tail ESS {d['ess_tail_min']:.0f}, "
                f"{d['divergences']} divergences ({d['chains']} chains x {d['draws']} draws)")

    def _repr_html_(self):
        rows = "".join(
            f"<tr><td>{g['architecture']} / {g['dataset']}</td><td>{g['n_runs']}</td>"
            + "".join(f"<td>{exponent_text(s)}</td>" for s in g["params"].values()) + "</tr>"
            for g in self.summary()["groups"])
        head = "".join(f"<th>{p}</th>" for p in PARAMS)
        return (f"<p>FitResult, norm <code>{self.settings['norm']}</code>; "
                f"{self.diagnostics_line()}</p><table><tr><th>group</th><th>runs</th>{head}"
                f"</tr>{rows}</table>")

    def __repr__(self):
        return f"FitResult(norm={self.settings['norm']!r}, groups={len(self.groups)})"

    # ----------------------------------------------------------------- files
    def save(self, directory) -> list[Path]:
        """Write ``posterior.nc``, ``summary.json`` and the fitted ``table.parquet``, each
        atomically (the table lets ``scalingfit check`` refit without some sizes)."""
        from .atomic import make_dir
        from .ingest import write_table

        directory = make_dir(directory)
        posterior, summary = directory / "posterior.nc", directory / "summary.json"
        with atomic_path(posterior) as tmp:
            self.idata.to_netcdf(str(tmp))
        with atomic_path(summary) as tmp:
            tmp.write_text(json.dumps(self.summary(), indent=2) + "\n")
        if self.fitted_table is None:
            return [posterior, summary]
        return [posterior, summary, write_table(self.fitted_table, directory / "table.parquet")]

    @classmethod
    def load(cls, directory) -> FitResult:
        """Read a result written by :meth:`save` (a directory or its ``posterior.nc``)."""
        from .errors import ScalingfitError

        path = Path(directory)
        path = path / "posterior.nc" if path.is_dir() else path
        rerun = "Fix: rerun scalingfit fit ... --out DIR to write it again."
        try:
            idata = az.from_netcdf(str(path))
            attrs = idata.posterior.attrs
        except FileNotFoundError as err:
            raise ScalingfitError(f"{path}: no such file. {rerun}") from err
        except (OSError, ValueError, KeyError, AttributeError) as err:
            # h5py/netCDF4 raise OSError on a truncated or garbled file, xarray ValueError
            why = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ScalingfitError(f"{path}: cannot be read as a fit's posterior ({why}); it is "
                                  f"damaged or incomplete. {rerun}") from err
        try:
            settings, diagnostics, meta = (json.loads(attrs[f"scalingfit_{k}"])
                                           for k in ("settings", "diagnostics", "meta"))
        except (KeyError, ValueError) as err:
            raise ScalingfitError(f"{path}: not written by scalingfit (no readable "
                                  f"scalingfit_* attributes). {rerun}") from err
        table = path.parent / "table.parquet"
        try:
            table = pd.read_parquet(table) if table.exists() else None
        except (OSError, ValueError) as err:
            why = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ScalingfitError(f"{table}: cannot be read ({why}); it is damaged or "
                                  f"incomplete. {rerun}") from err
        return cls(idata, settings=settings, diagnostics=diagnostics, meta=meta, table=table)
