"""The record log of a W&B run (``run-<id>.wandb``), read without the wandb client.

The file is a 7-byte header (``":W&B"``, magic ``0xBEE1``, a version byte) followed by
LevelDB's log format: 32 KiB blocks of records, each ``uint32 checksum | uint16 length |
uint8 type | data``, little-endian, where a record longer than what is left of a block is
cut into FIRST, MIDDLE and LAST fragments and a block's last < 7 bytes are zero padding.
W&B's checksum is the zlib CRC-32 of the type byte and the data (LevelDB itself uses a
masked CRC-32C; W&B's writers, Python's and Go's, use the plain IEEE CRC — checked on
files the client writes, in the tests).

A fragment that fails its checksum loses its record, counted once, and reading goes on
with the next one: its length is outside the checksum, so it is trusted as long as it
fits in the block; a header that cannot be right (a length past the block, an unknown
type) sends the reader looking, within the block, for the next header whose checksum
holds. A file cut short ends in a counted truncated record.
"""

from __future__ import annotations

import struct
import zlib
from collections import Counter

from ..errors import DataError

__all__ = ["read_records", "BAD_CHECKSUM", "DAMAGED", "TRUNCATED", "ORPHANS"]

BAD_CHECKSUM = "W&B records failed their checksum"
DAMAGED = "damaged stretches of a W&B run log skipped (bad record header)"
TRUNCATED = "W&B run logs end in a truncated record"
ORPHANS = "W&B record fragments without their first part"

_FILE_HEADER = struct.Struct("<4sHB")
_IDENT, _MAGIC, _VERSIONS = b":W&B", 0xBEE1, (0, 1)
_BLOCK = 32768
_RECORD_HEADER = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_TYPE_CRC = {kind: zlib.crc32(bytes([kind])) for kind in (_FULL, _FIRST, _MIDDLE, _LAST)}


def read_records(path, skipped: Counter):
    """Yield the data of every whole record whose fragments' checksums hold.

    Parameters
    ----------
    path : path-like
        A ``run-<id>.wandb`` file.
    skipped : collections.Counter
        Receives the count of records or stretches skipped, by reason.

    Raises
    ------
    DataError
        If the file does not start with the W&B header.
    """
    with open(path, "rb") as file:
        header = file.read(_FILE_HEADER.size)
        if len(header) < _FILE_HEADER.size:
            raise DataError("too short to be a W&B run log (no file header).", source=path)
        ident, magic, version = _FILE_HEADER.unpack(header)
        if ident != _IDENT or magic != _MAGIC:
            raise DataError("not a W&B run log (its first bytes are not ':W&B').",
                            source=path, fix="give a run-<id>.wandb file written by wandb.")
        if version not in _VERSIONS:
            raise DataError(f"W&B run log version {version} is not one this reader knows "
                            f"({_VERSIONS}).", source=path,
                            fix="export the run's history instead (run.history()).")
        assembler = _Assembler(skipped)
        expected = _BLOCK - _FILE_HEADER.size  # the file header fills the first block's start
        block = file.read(expected)
        while block:
            yield from assembler.block(block, last=len(block) < expected)
            expected = _BLOCK
            block = file.read(expected)
        if assembler.pending is not None:
            skipped[TRUNCATED] += 1


class _Assembler:
    """Reassembles fragments across blocks; remembers a record being dropped."""

    def __init__(self, skipped: Counter):
        self.skipped = skipped
        self.pending = None  # fragments of the record in progress
        self.dropping = False  # the rest of a record already counted as lost

    def block(self, block: bytes, last: bool):
        size, pos = len(block), 0
        while size - pos >= _RECORD_HEADER.size:
            checksum, length, kind = _RECORD_HEADER.unpack_from(block, pos)
            if checksum == 0 and length == 0 and kind == 0:
                return  # zero padding: nothing more in this block
            end = pos + _RECORD_HEADER.size + length
            if kind not in _TYPE_CRC or end > size:
                if end > size and last and kind in _TYPE_CRC:
                    self.skipped[TRUNCATED] += 1  # the file ends inside this record
                    self.pending, self.dropping = None, False
                    return
                self._lose(DAMAGED)
                pos = _next_intact_header(block, pos + 1)
                continue
            data = block[pos + _RECORD_HEADER.size:end]
            pos = end
            if zlib.crc32(data, _TYPE_CRC[kind]) != checksum:
                self._lose(BAD_CHECKSUM)
                continue
            if kind in (_FULL, _FIRST):
                if self.pending is not None:
                    self.skipped[TRUNCATED] += 1  # a record that never got its last part
                self.dropping = False
                if kind == _FULL:
                    self.pending = None
                    yield data
                else:
                    self.pending = [data]
            elif self.pending is None:
                if not self.dropping:
                    self.skipped[ORPHANS] += 1
                self.dropping = kind == _MIDDLE
            elif kind == _MIDDLE:
                self.pending.append(data)
            else:
                whole, self.pending = b"".join(self.pending + [data]), None
                yield whole

    def _lose(self, reason):
        """Count a lost record once, even if it was in fragments."""
        if not self.dropping:
            self.skipped[reason] += 1
        self.pending = None
        # fragments that follow, up to the next FULL or FIRST, belong to what was lost
        self.dropping = True


def _next_intact_header(block: bytes, start: int) -> int:
    """Offset of the next record header in ``block`` whose checksum holds, else its end."""
    for pos in range(start, len(block) - _RECORD_HEADER.size + 1):
        checksum, length, kind = _RECORD_HEADER.unpack_from(block, pos)
        end = pos + _RECORD_HEADER.size + length
        if kind in _TYPE_CRC and end <= len(block) and zlib.crc32(
                block[pos + _RECORD_HEADER.size:end], _TYPE_CRC[kind]) == checksum:
            return pos
    return len(block)
