"""What every reader shares: the per-source report."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["SourceReport"]


@dataclass
class SourceReport:
    """What one source gave: runs, rows kept, and every skipped row counted by reason."""

    source: str
    reader: str
    runs: int = 0
    rows_kept: int = 0
    skipped: Counter = field(default_factory=Counter)
    recognised: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    @property
    def rows_skipped(self) -> int:
        return sum(self.skipped.values())

    def line(self) -> str:
        """One line for the terminal."""
        text = (f"{self.source} [{self.reader}]: {self.runs} runs, {self.rows_kept} rows kept, "
                f"{self.rows_skipped} skipped")
        if self.skipped:
            text += " (" + "; ".join(f"{n} {why}" for why, n in self.skipped.items()) + ")"
        if self.recognised:
            text += "; recognised " + ", ".join(f"{v!r} as {k}" for k, v in
                                                self.recognised.items())
        return text
