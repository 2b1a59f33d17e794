"""The ``scalingfit`` command: parses arguments and calls the public API, nothing more.

Every user-facing problem (a :class:`~scalingfit.errors.ScalingfitError`) is printed on one
line and exits with status 2, without a traceback; so is an OSError on a path that slipped
past the checks (a backstop). Output paths are checked before any work is done, so a bad
``--out`` never throws a finished fit away.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import warnings

from .errors import ScalingfitError, ScalingfitWarning, first_line

MAPPING_HELP = """\
mapping file (YAML), for sources whose names or units differ from the canonical table:
  columns: {test_error: val_err, norm_spectral_complexity: spec}
  units:   {test_error: percent}          # or accuracy, accuracy_percent; norms: log, log10
  runs:    {template: "{architecture}_{dataset}_P{train_size}_seed{seed}"}
  set:     {n_test: 10000}
"""


def _add_sources(parser, *, example=True):
    parser.add_argument("sources", nargs="*", metavar="SOURCE",
                        help="canonical CSV/Parquet tables, TensorBoard log directories, W&B "
                             "run directories or CSV exports, wandb://entity/project, MLflow "
                             "stores (mlruns/) or mlflow://HOST[:PORT]/EXPERIMENT, Hugging "
                             "Face Trainer output directories (trainer_state.json), Lightning "
                             "CSVLogger directories (metrics.csv), the paper's .npy run "
                             "files, or directories holding them")
    parser.add_argument("--map", dest="mapping", metavar="FILE", help="column mapping (YAML)")
    parser.add_argument("--mlflow-uri", metavar="URI",
                        help="MLflow tracking URI for mlflow:///EXPERIMENT sources (e.g. "
                             "https://mlflow.example.org; default: MLFLOW_TRACKING_URI)")
    parser.add_argument("--nan-policy", choices=("raise", "omit"), default="raise",
                        help="rows with a missing test error or norm: error (default) or "
                             "skip and count them")
    if example:
        parser.add_argument("--example", action="store_true",
                            help="use the embedded example dataset (4 groups, known exponents)")


def _fit_arguments(parser):
    _add_sources(parser)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory: posterior.nc, summary.json and table.parquet")
    _fit_options(parser)
    parser.add_argument("--tie-convergence", action="store_true",
                        help="fit the combined-law model, in which gamma_conv = gamma1*gamma2 "
                             "(what scalingfit predict then extrapolates)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 if R-hat, ESS or divergences fail")


def _fit_options(parser):
    parser.add_argument("--norm", metavar="NAME",
                        help="which norm_<NAME> / lognorm_<NAME> to use (default: "
                             "spectral_complexity if present, else the first one)")
    parser.add_argument("--group-by", nargs="+", metavar="COLUMN",
                        default=["architecture", "dataset"],
                        help="columns whose combinations are the groups (default: "
                             "architecture dataset)")
    parser.add_argument("--n-test", type=int, metavar="N",
                        help="test-set size, when the table has no n_test column")
    parser.add_argument("--at-end", choices=("optimum", "bound"), default="optimum",
                        help="a run with no optimum in its logged range (still improving at "
                             "its last point): its last point is taken as the optimum "
                             "(default; the paper's convention: it is still on its "
                             "envelope there), or lambda* is a lower bound and eps* an "
                             "upper one")
    parser.add_argument("--sampler", choices=("auto", "pymc", "nutpie"),
                        help="NUTS implementation (auto: nutpie if installed)")
    parser.add_argument("--draws", type=int, help="posterior draws per chain (default 1000)")
    parser.add_argument("--tune", type=int, help="tuning steps per chain (default 1000)")
    parser.add_argument("--chains", type=int, help="number of chains (default 4)")
    parser.add_argument("--seed", type=int, help="random seed (default 0); same seed, "
                                                 "same numbers")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _load(args):
    from .ingest.sources import load

    if getattr(args, "example", False):
        if args.sources:
            raise ScalingfitError("give either SOURCE files or --example, not both.")
        from .fitting.simulation import example_table

        return example_table(), []
    if not args.sources:
        raise ScalingfitError("no SOURCE given (or use --example); see --help.")
    return load(args.sources, args.mapping, nan_policy=args.nan_policy, return_report=True,
                mlflow_uri=args.mlflow_uri)


def parse_sizes(values, flag: str, *, integer: bool = False, hint: str = "") -> list:
    """Training-set sizes from the command line, separated by commas, spaces or both:
    ``--train-size 64000 128000``, ``64000,128000``, ``"64000 128000"`` (and 6.4e4).

    Anything else in the list (``12k``, ``4000x``) is an error naming the flag and the token,
    never silently glued or dropped.
    """
    tokens = [t for v in ([values] if isinstance(values, str) else values)
              for t in re.split(r"[,\s]+", str(v).strip()) if t]
    if not tokens:
        raise ScalingfitError(f"{flag} needs at least one training-set size, e.g. "
                              f"{flag} 64000,128000.")
    sizes = []
    for token in tokens:
        try:
            value = float(token)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0) or (integer and value != int(value)):
            kind = "a positive whole number" if integer else "a positive number"
            raise ScalingfitError(
                f"{flag}: {token!r} is not {kind}. It takes training-set sizes separated by "
                f"commas or spaces, e.g. {flag} 4000,8000 or {flag} 4000 8000{hint}.")
        sizes.append(int(value) if integer else value)
    return sizes


def _run_fit(args):
    from .atomic import check_output_dir
    from .fitting.pipeline import fit

    check_output_dir(args.out)  # before minutes of fitting, not after
    table, reports = _load(args)
    if not args.quiet:
        for report in reports:
            print(report.line(), file=sys.stderr)
    result = fit(table, norm=args.norm, group_by=args.group_by, n_test=args.n_test,
                 at_end=args.at_end, tie_convergence=args.tie_convergence,
                 sampler=args.sampler, draws=args.draws, tune=args.tune,
                 chains=args.chains, seed=args.seed, progress=not args.quiet)
    paths = result.save(args.out)
    print(result.table())
    print(result.diagnostics_line())
    print("wrote " + ", ".join(map(str, paths)))
    if args.strict and not result.converged:
        return 3
    return 0


def _ingest_arguments(parser):
    _add_sources(parser, example=False)
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="the canonical table to write: table.parquet or table.csv")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _run_ingest(args):
    from .ingest.sources import load
    from .ingest.table import OUTPUT_SUFFIXES, write_table

    if not args.sources:
        raise ScalingfitError("no SOURCE given; see --help.")
    if not args.out.lower().endswith(OUTPUT_SUFFIXES):  # say so before reading anything
        raise ScalingfitError(f"--out must end in one of {', '.join(OUTPUT_SUFFIXES)}.")
    from .atomic import check_output_file

    check_output_file(args.out)
    table, reports = load(args.sources, args.mapping, nan_policy=args.nan_policy,
                          return_report=True, show_progress=False if args.quiet else None,
                          mlflow_uri=args.mlflow_uri)
    for report in reports:
        print(report.line())
    path = write_table(table, args.out)
    print(f"wrote {path}: {len(table)} rows, {table['run_id'].nunique()} runs")
    return 0


def _fit_dir(path):
    """The fit directory ``path`` if it is one (it holds posterior.nc), else None."""
    from pathlib import Path

    path = Path(path)
    return path if path.is_dir() and (path / "posterior.nc").exists() else None


def _load_fit(path):
    from pathlib import Path

    from .fitting.result import FitResult

    if _fit_dir(path) is None:
        path = Path(path)
        if path.name == "fit-combined" and (path.parent / "check.json").exists():
            raise ScalingfitError(
                f"{path}: not saved: that check ran with --no-loo, which skips the combined-law "
                "fit of all the data. Fix: rerun scalingfit check without --no-loo, or fit "
                "it directly: scalingfit fit SOURCE --tie-convergence --out DIR.")
        raise ScalingfitError(f"{path}: not a fit directory (no posterior.nc); run "
                              "scalingfit fit ... --out DIR first.")
    return FitResult.load(path)


def _check_arguments(parser):
    _add_sources(parser)
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory: check.json, and the fits it made (fit-*/)")
    parser.add_argument("--holdout", nargs="+", action="extend", metavar="P",
                        help="training-set sizes to leave out of the out-of-sample refit, "
                             "separated by commas or spaces: --holdout 4000,8000 or "
                             "--holdout 4000 8000 (default: each group's largest)")
    parser.add_argument("--tolerance", type=float, default=None, metavar="D",
                        help="largest |gamma_conv - gamma1*gamma2| a 'consistent' verdict "
                             "allows (default 0.1)")
    parser.add_argument("--no-loo", action="store_true",
                        help="skip the PSIS-LOO comparison and with it the combined-law fit "
                             "of all the data: one fit fewer, and no fit-combined/ to "
                             "predict from (unless FIT_DIR is a --tie-convergence fit)")
    parser.add_argument("--refit-loo", action="store_true",
                        help="replace the LOO terms whose Pareto k exceeds 0.7 by exact "
                             "refits (stage 2 without that size; seconds to a minute each)")
    parser.add_argument("--strict", action="store_true",
                        help="exit with status 3 if any of its fits (free, combined, "
                             "held-out) fails its diagnostics (R-hat, ESS, divergences); "
                             "check.json and the fits are written all the same")
    _fit_options(parser)
    parser.description += (". SOURCE may also be one FIT_DIR written by scalingfit fit: its "
                           "fit is reused and its table.parquet refitted.")
    # None: the settings of the given fit directory, or fit()'s defaults
    parser.set_defaults(group_by=None, at_end=None)


def _run_check(args):
    from .atomic import check_output_dir
    from .checking.pipeline import check
    from .checking.verdict import TOLERANCE

    # say so before minutes of fitting: a bad size list, a bad output directory
    holdout = None if args.holdout is None else parse_sizes(
        args.holdout, "--holdout", integer=True, hint=" (after the SOURCE or FIT_DIR)")
    check_output_dir(args.out)
    result = None
    if len(args.sources) == 1 and _fit_dir(args.sources[0]) is not None:
        result = _load_fit(args.sources[0])
        table = result.fitted_table
        if table is None:
            raise ScalingfitError(f"{args.sources[0]}: the fit directory has no table.parquet; "
                                  "pass the SOURCE files instead.")
    else:
        table, reports = _load(args)
        if not args.quiet:
            for report in reports:
                print(report.line(), file=sys.stderr)
    options = {k: getattr(args, k) for k in ("norm", "group_by", "n_test", "at_end", "sampler",
                                             "draws", "tune", "chains", "seed")}
    options = {k: v for k, v in options.items() if v is not None}
    outcome = check(table, result=result, holdout=holdout,
                    tolerance=TOLERANCE if args.tolerance is None else args.tolerance,
                    compare=not args.no_loo, refit_loo=args.refit_loo,
                    progress=not args.quiet, **options)
    paths = outcome.save(args.out)
    print(outcome.table())
    print("wrote " + ", ".join(map(str, paths)))
    if "combined" not in outcome.fits:
        print("no fit-combined/ (--no-loo skips the combined-law fit of all the data): to "
              "predict from the combined laws, rerun without --no-loo, or run scalingfit fit "
              "SOURCE --tie-convergence --out DIR.")
    failed = [name for name, f in outcome.fits.items() if f is not None and not f.converged]
    if args.strict and failed:
        print(f"--strict: the {', '.join(failed)} fit(s) failed their diagnostics: exit 3",
              file=sys.stderr)
        return 3
    return 0


def _predict_arguments(parser):
    parser.add_argument("fit_dir", metavar="FIT_DIR", help="a directory written by scalingfit "
                                                           "fit (or check's fit-*/)")
    parser.add_argument("--train-size", nargs="+", action="extend", required=True,
                        metavar="P",
                        help="training-set sizes to predict at, separated by spaces or "
                             "commas: --train-size 64000 128000 or --train-size 64000,128000")
    parser.add_argument("--json", metavar="FILE", help="also write the predictions as JSON")
    parser.epilog = PREDICT_EPILOG


PREDICT_EPILOG = """\
chance: the laws hold below each group's chance error (the plateau stage 1 fits). A
prediction whose median eps* is at or above it is not capped but flagged: ABOVE CHANCE in
the table, "above_chance": true in the JSON (with "chance_error"); such a number is
meaningless: expect about the chance error there. "reaches it" / "reaches_chance": only the
upper end of the 90 % interval is at or above it.
"""


def _run_predict(args):
    import json

    from .atomic import atomic_path, check_output_file
    from .checking.prediction import predict
    from .report.text import prediction_table

    sizes = parse_sizes(args.train_size, "--train-size")
    if args.json:
        check_output_file(args.json, "--json")
    rows = predict(_load_fit(args.fit_dir), sizes)
    print(prediction_table(rows))
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps({"predictions": rows}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _report_arguments(parser):
    parser.add_argument("fit_dir", metavar="FIT_DIR", help="a directory written by scalingfit "
                                                           "fit (or check's fit-free/)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory: report.html, report.md, and each figure as "
                             "PNG and SVG")
    parser.add_argument("--check", metavar="CHECK", help="check.json (or its directory) to "
                                                         "include")


def _run_report(args):
    from .atomic import check_output_dir
    from .checking.pipeline import load_check
    from .report.writer import render

    check_output_dir(args.out)
    result = _load_fit(args.fit_dir)
    outcome = load_check(args.check) if args.check else None
    paths = render(result, args.out, check=outcome, check_name=f"--check {args.check}")
    print("wrote " + ", ".join(str(p) for p in paths[:2]) + f" and {len(paths) - 2} figure files")
    return 0


def _calibrate_arguments(parser):
    parser.add_argument("fit_dir", metavar="FIT_DIR", help="a directory written by scalingfit "
                                                           "fit (with its table.parquet)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory: calibration.json")
    parser.add_argument("--replicates", type=int, default=10, metavar="N",
                        help="simulated sweeps per scenario, each refitted: 2*N fits of a "
                             "few tens of seconds to minutes each (default 10; every share is "
                             "printed with its binomial 90 %% interval)")
    parser.add_argument("--delta", type=float, default=0.2, metavar="D",
                        help="gamma_conv - gamma1*gamma2 of the 'violated' scenario, whose "
                             "detection rate is reported (default 0.2)")
    parser.add_argument("--tolerance", type=float, default=None, metavar="T",
                        help="the verdict's tolerance (default 0.1, as scalingfit check)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seeds the draws chosen, the simulations and the refits (default 0)")
    parser.add_argument("--sampler", choices=("auto", "pymc", "nutpie"),
                        help="NUTS implementation of the refits (default: the fit's)")
    parser.add_argument("--draws", type=int, help="posterior draws per chain of each refit "
                                                  "(default: the fit's)")
    parser.add_argument("--tune", type=int, help="tuning steps per chain (default 1000)")
    parser.add_argument("--chains", type=int, help="chains of each refit (default: the fit's)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _run_calibrate(args):
    from .atomic import check_output_dir
    from .checking.calibration import calibrate
    from .checking.verdict import TOLERANCE

    check_output_dir(args.out)  # before an hour of refits, not after
    result = _load_fit(args.fit_dir)
    outcome = calibrate(result, replicates=args.replicates, delta=args.delta,
                        tolerance=TOLERANCE if args.tolerance is None else args.tolerance,
                        seed=args.seed, progress=not args.quiet, sampler=args.sampler,
                        draws=args.draws, tune=args.tune, chains=args.chains)
    path = outcome.save(args.out)
    print(outcome.table())
    print(f"wrote {path}")
    return 0


COMMANDS = {
    "fit": ("fit both laws hierarchically; writes posterior.nc, summary.json, table.parquet",
            _fit_arguments, _run_fit),
    "ingest": ("read TensorBoard, W&B, MLflow, Hugging Face Trainer, Lightning, CSV or the "
               "paper's .npy logs into one canonical table",
               _ingest_arguments, _run_ingest),
    "check": ("do the two laws, combined, predict the best error? verdict, held-out sizes, "
              "LOO; writes check.json", _check_arguments, _run_check),
    "predict": ("predicted best error and optimal norm at training-set sizes, with intervals",
                _predict_arguments, _run_predict),
    "report": ("an HTML and Markdown report with figures, from a fit (and a check)",
               _report_arguments, _run_report),
    "calibrate": ("are a fit's intervals and verdict honest? simulate sweeps like it from its "
                  "posterior, refit them; writes calibration.json", _calibrate_arguments,
                  _run_calibrate),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scalingfit",
        description="Posterior estimates of the two dynamical scaling laws (test error\n"
                    "against the weight norm along training; optimal norm against the\n"
                    "training-set size) from training logs.\n"
                    "Try it: scalingfit fit --example --out fit",
        epilog=MAPPING_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"scalingfit {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (summary, add_arguments, run) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary, epilog=MAPPING_HELP,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
        add_arguments(sub)  # (may set its own epilog)
        sub.set_defaults(run=run)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """Our warnings as one line each; other libraries' warnings as they would be shown."""
    if issubclass(category, ScalingfitWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line).rstrip(),
              file=sys.stderr)


def _os_error_text(err: OSError) -> str:
    where = " -> ".join(str(f) for f in (err.filename, err.filename2) if f is not None)
    why = err.strerror or first_line(err)
    where = f"{where}: " if where else ""
    return (f"{where}{why} ({type(err).__name__}). Fix: check that path (a file where a "
            "directory is needed, permissions, free space), or choose another one.")


#: Other libraries' warnings that say nothing a user of this command can act on, silenced
#: by the command (not by the library: a Python user keeps them), each matched exactly.
#: Each is (message regex, category, module regex of where it is raised).
THIRD_PARTY_NOISE = (
    # PyTensor's notice that it found no optimised BLAS says nothing about the results
    (r".*BLAS.*", UserWarning, ""),
    # ArviZ's once-a-day notice of its coming refactor, printed at its import
    (r"\s*ArviZ is undergoing a major refactor", FutureWarning, r"arviz(\.|$)"),
)


def quiet_third_party_warnings():
    """Silence :data:`THIRD_PARTY_NOISE`; call before the libraries are imported."""
    for message, category, module in THIRD_PARTY_NOISE:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)


def main(argv=None) -> int:
    quiet_third_party_warnings()  # before any heavy import: ArviZ warns as it is imported
    args = build_parser().parse_args(argv)
    warnings.showwarning = _show_warning
    try:
        return args.run(args)
    except ScalingfitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a path the early checks could not foresee: still one line
        print(f"error: {_os_error_text(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; no output was written", file=sys.stderr)
        return 130
