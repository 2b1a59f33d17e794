"""``python -m reference_runs COMMAND ...``: train reference runs, write canonical tables.

Each command lives in its own module exposing ``add_arguments(parser)`` and ``run(args)``;
only the module of the command being run is imported (torch is never loaded for the
perceptron theory, for instance).
"""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from scalingfit.errors import ScalingfitError

#: command -> (module, one-line help)
COMMANDS = {
    "perceptron": ("reference_runs.perceptron",
                   "teacher-student perceptron trained by GD/Adam/...; writes a canonical table"),
    "perceptron-theory": ("reference_runs.perceptron_theory",
                          "N -> infinity fixed-norm theory curves eps(lambda; alpha)"),
    "train": ("reference_runs.train", "train one CNN / ResNet / ViT / MLP run"),
    "sweep": ("reference_runs.sweep", "a resumable sweep over architecture x dataset x P x seed"),
    "corpus": ("reference_runs.corpus",
               "train the corpus of real learning curves (digits, teacher); one table per set"),
}


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m reference_runs", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        if name == chosen:
            try:
                command = import_module(module)
            except ScalingfitError as err:  # e.g. an optional dependency is missing
                print(f"error: {err}", file=sys.stderr)
                return 2
            sub.description = command.__doc__
            sub.formatter_class = argparse.RawDescriptionHelpFormatter
            command.add_arguments(sub)
            sub.set_defaults(run=command.run,
                             accepts_overrides=getattr(command, "ACCEPTS_OVERRIDES", False))
    # Commands that take free-form settings (``--key=value``) declare ACCEPTS_OVERRIDES;
    # for the others an unknown argument is an error, as usual.
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = unknown
    try:
        return args.run(args) or 0
    except ScalingfitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
