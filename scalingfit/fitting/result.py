"""``FitResult``: the posterior (ArviZ InferenceData) with what is needed to read it.

Groups of the InferenceData:

- ``posterior``, ``sample_stats``: from the sampler; exponents have dims ``group``.
- ``constant_data``: stage 1's estimates per ``run`` (``z``: γ̂, x̂*, ŷ* in fitting
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

from ..atomic import atomic_path, make_dir
from ..errors import ScalingfitError, first_line
from .likelihood import EXPONENTS, RunEstimates
from .run_curves import RUN_COVERAGE_MIN, SHAPES

__all__ = ["FitResult", "describe"]


def describe(values) -> dict:
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
                from .. import __version__

                versions[package] = __version__
    return versions


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
    def build(cls, idata, *, data, curves, table, groups, settings, diagnostics, timings,
              notes):
        """Attach stage 1's estimates, fitted rows and provenance to the sampler's
        InferenceData."""
        labels = list(idata.posterior.coords["group"].values)
        runs = list(data.run_ids)
        group_info = []
        for group in groups:
            rows = table[table["run_id"].isin(group.runs.index)]
            info = {k: str(v) for k, v in group.keys.items()}
            for key in ("architecture", "dataset"):  # docs/design.md §4 names them always
                info.setdefault(key, "+".join(map(str, sorted(rows[key].unique()))))
            group_info.append(info)
        fitted = np.concatenate([c.fitted_runs for c in curves])

        def per_run(key):  # a stage-1 quantity of the runs stage 2 read
            return np.concatenate([getattr(c, key) for c in curves])[fitted]

        constant = xr.Dataset(
            {
                "z": (("run", "estimate"), data.z),
                "z_cov": (("run", "estimate", "estimate_"), data.cov),
                "loading": (("run", "estimate", "shape"), data.loading),
                "censored": ("run", data.censored),
                "x_last": ("run", data.x_last),
                "y_last": ("run", data.y_last),
                "y_last_sd": ("run", data.y_last_sd),
                "x_first": ("run", per_run("x_first")),
                "departure": ("run", per_run("departure")),
                "shape_class": ("run", per_run("shape")),
                "starts_below_chance": ("run", per_run("starts_below_chance")),
                "point_coverage": ("run", per_run("point_coverage")),
                "n_points": ("run", per_run("n_points")),
                "ell": ("run", data.ell),
                "level_index": ("run", data.level),
                "group_index": ("run", data.group),
                "train_size": ("run", np.exp(data.ell + data.ell_center[data.group]).round()),
                "x_scale": ("group", data.x_scale),
                "x_center": ("group", data.x_center),
                "ell_center": ("group", data.ell_center),
                "ell_range": (("group", "end"), data.ell_range),
                "seeded_levels": ("group", data.seeded_levels),
                "log_slopes": (("group", "segment"), data.log_slopes),
                "slope_loading": (("group", "segment", "shape"), data.slope_loading),
                "knots": (("group", "knot"), data.knots),
                "width": ("group", data.width),
                "sharpness": ("group", [c.sharpness for c in curves]),
                "log_chance": ("group", [c.log_chance for c in curves]),
                "plateau_sharpness": ("group", [c.plateau_sharpness for c in curves]),
                "sigma0": ("group", [c.sigma0 for c in curves]),
                "envelope_support": ("group", [c.envelope_support for c in curves]),
                "point_coverage_group": ("group", [c.point_coverage_group for c in curves]),
            },
            coords={"run": runs, "group": labels, "estimate": ["offset", "x_star", "y_star"],
                    "estimate_": ["offset", "x_star", "y_star"], "end": ["low", "high"]},
        )
        # every logged row, with its run's index among stage 2's runs (−1: never left the
        # chance plateau, not fitted)
        index = np.cumsum(fitted) - 1
        row_x, row_y, row_run, row_fit, row_sd = [], [], [], [], []
        offset = 0
        for group, c in zip(groups, curves):
            rows = group.curves
            row_x.append(rows.x * group.x_scale + group.x_center)
            row_y.append(np.exp(rows.y))
            run = rows.run + offset
            row_run.append(np.where(fitted[run], index[run], -1))
            row_fit.append(c.fitted)
            row_sd.append(c.predictive_sd)
            offset += rows.n_runs
        observed = xr.Dataset({
            "log_norm": ("row", np.concatenate(row_x)),
            "test_error": ("row", np.concatenate(row_y)),
            "fitted_log_error": ("row", np.concatenate(row_fit)),
            "predictive_sd": ("row", np.concatenate(row_sd)),
            "row_run": ("row", np.concatenate(row_run)),
        })
        excluded = [{"run_id": str(run_id), "train_size": int(size), "group_index": g,
                     "shape": "plateau_only"}
                    for g, (group, c) in enumerate(zip(groups, curves))
                    for run_id, size in zip(group.runs.index[~c.fitted_runs],
                                            group.runs["train_size"][~c.fitted_runs])]
        idata.add_groups(constant_data=constant, observed_data=observed)
        table_hash = hashlib.sha256(
            pd.util.hash_pandas_object(table.drop(columns="source", errors="ignore"),
                                       index=False).to_numpy().tobytes()).hexdigest()[:16]
        meta = {"groups": group_info, "versions": _versions(), "excluded_runs": excluded,
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
        """Per group: its ``group_by`` values, and architecture and dataset."""
        return self.meta["groups"]

    @property
    def group_names(self) -> list[str]:
        """Each group's name (:func:`~scalingfit.fitting.groups.group_name`), in order."""
        return [str(g) for g in self.idata.posterior.coords["group"].to_numpy()]

    def draws(self, name: str) -> np.ndarray:
        """Posterior draws of a parameter, shape (chains·draws, groups)."""
        values = self.idata.posterior[name]
        return values.stack(sample=("chain", "draw")).transpose("sample", ...).to_numpy()

    def run_estimates(self) -> RunEstimates:
        """Stage 1's estimates as stage 2 reads them."""
        c = self.idata.constant_data
        arrays = {k: c[name].to_numpy() for k, name in (
            ("run_ids", "run"), ("group", "group_index"), ("level", "level_index"),
            ("ell", "ell"), ("z", "z"), ("cov", "z_cov"), ("loading", "loading"),
            ("x_last", "x_last"), ("y_last", "y_last"), ("y_last_sd", "y_last_sd"),
            ("x_scale", "x_scale"), ("x_center", "x_center"), ("ell_center", "ell_center"),
            ("ell_range", "ell_range"), ("log_slopes", "log_slopes"),
            ("slope_loading", "slope_loading"), ("knots", "knots"), ("width", "width"))}
        return RunEstimates(groups=self.group_names,
                            censored=c["censored"].to_numpy().astype(bool),
                            seeded_levels=c["seeded_levels"].to_numpy().astype(bool), **arrays)

    def runs(self) -> list[dict]:
        """Per run: its group, P, shape (:data:`~scalingfit.fitting.run_curves.SHAPES`),
        whether it starts below chance, and how well its fitted curve describes its points
        (the share inside their 90 % predictive interval; ``point_check`` says
        ``misfit`` below :data:`~scalingfit.fitting.run_curves.RUN_COVERAGE_MIN`)."""

        c = self.idata.constant_data
        out = [{"run_id": str(run), "group": self.group_names[int(g)],
                "train_size": int(size), "shape": str(shape),
                "starts_below_chance": bool(below), "point_coverage": round(float(cover), 3),
                "point_check": "ok" if cover >= RUN_COVERAGE_MIN else "misfit"}
               for run, g, size, shape, below, cover in zip(
                   c["run"].to_numpy(), c["group_index"].to_numpy(),
                   c["train_size"].to_numpy(), c["shape_class"].to_numpy(),
                   c["starts_below_chance"].to_numpy(), c["point_coverage"].to_numpy())]
        out += [{**{k: v for k, v in run.items() if k != "group_index"},
                 "group": self.group_names[run["group_index"]], "starts_below_chance": None,
                 "point_coverage": None, "point_check": "not fitted"}
                for run in self.meta["excluded_runs"]]
        return out

    def summary(self) -> dict:
        """The ``summary.json`` content (docs/design.md §4), with extra keys."""
        constant = self.idata.constant_data
        runs = self.runs()
        groups = []
        for g, (info, name) in enumerate(zip(self.groups, self.group_names)):
            mine = constant["group_index"].to_numpy() == g
            entry = {**info, "name": name, "n_runs": int(mine.sum()),
                     "params": {p: describe(self.draws(p)[:, g]) for p in EXPONENTS}}
            entry["group"] = dict(info)
            entry["gamma1_local"] = {end: describe(self.draws(f"gamma1_at_{end}")[:, g])
                                     for end in ("smallest_P", "largest_P")}
            entry["n_censored"] = int(constant["censored"].to_numpy()[mine].sum())
            entry["train_sizes"] = sorted(int(p) for p in
                                          np.unique(constant["train_size"].to_numpy()[mine]))
            shapes = [r["shape"] for r in runs if r["group"] == name]
            entry["shapes"] = {shape: shapes.count(shape) for shape in SHAPES}
            entry["point_coverage"] = round(float(constant["point_coverage_group"][g]), 3)
            entry["n_runs_misfit"] = sum(r["point_check"] == "misfit" for r in runs
                                         if r["group"] == name)
            entry["envelope_support"] = round(float(constant["envelope_support"][g]), 3)
            groups.append(entry)
        return {"norm": self.settings["norm"], "groups": groups, "runs": runs,
                "diagnostics": dict(self.diagnostics), "versions": self.meta["versions"],
                "settings": self.settings, "timings": self.meta["timings"],
                "notes": self.meta["notes"], "table_sha256_16": self.meta["table_sha256_16"]}

    def table(self) -> str:
        """A plain-text table of the exponents per group (what ``scalingfit fit`` prints)."""
        from ..report.text import fit_table

        return fit_table(self.summary())

    def diagnostics_line(self) -> str:
        from ..report.text import diagnostics_line

        return diagnostics_line(self.diagnostics)

    def _repr_html_(self):
        from ..report.text import fit_html

        return fit_html(self.summary())

    def __repr__(self):
        return f"FitResult(norm={self.settings['norm']!r}, groups={len(self.groups)})"

    # ----------------------------------------------------------------- files
    def save(self, directory) -> list[Path]:
        """Write ``posterior.nc``, ``summary.json`` and the fitted ``table.parquet``, each
        atomically (the table lets ``scalingfit check`` refit without some sizes)."""
        from ..ingest.table import write_table

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
            raise ScalingfitError(f"{path}: cannot be read as a fit's posterior "
                                  f"({first_line(err)}); it is "
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
            raise ScalingfitError(f"{table}: cannot be read ({first_line(err)}); it is damaged or "
                                  f"incomplete. {rerun}") from err
        return cls(idata, settings=settings, diagnostics=diagnostics, meta=meta, table=table)
