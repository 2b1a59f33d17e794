"""Ingest: training logs → the canonical table (docs/design.md §3).

- :mod:`.table`: the canonical table itself — its columns, :func:`validate` (the one
  validator every producer goes through) and :func:`write_table`;
- :mod:`.mapping`: how a source's names and units become canonical (YAML ``--map``);
- one reader per source: :mod:`.csv`, :mod:`.tensorboard`, :mod:`.wandb`, :mod:`.mlflow`,
  :mod:`.huggingface` (a Trainer's ``trainer_state.json``), :mod:`.lightning` (a
  ``CSVLogger``'s ``metrics.csv``), :mod:`.paper`, with what they share in :mod:`._common`;
- :mod:`.sources`: which reader a path needs, and :func:`load`, which reads them all.

Readers are imported when :func:`load` first needs them: writing a table does not.
"""

from importlib import import_module

_LAZY = {"load": ".sources", "read_source": ".sources", "SourceReport": "._common",
         "validate": ".table", "write_table": ".table", "OUTPUT_SUFFIXES": ".table",
         "Mapping": ".mapping"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'scalingfit.ingest' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name], __name__), name)
