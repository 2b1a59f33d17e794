"""TFRecord framing, as TensorBoard event files use it, with both checksums verified.

Each record is ``uint64 length | uint32 masked CRC-32C of the length | data | uint32
masked CRC-32C of the data``, little-endian. Reading goes in two passes per chunk: a tight
loop follows the stored lengths, then every checksum of the chunk is verified at once
(:func:`._crc32c.crc32c_many`).

A record whose data fails its checksum is skipped and counted; its length was verified,
so the next record is where it says. A length that fails its checksum cannot be trusted
(nor anything the loop found after it): the reader looks, byte by byte, for the next
place where a length and its checksum agree (and the data's checksum too, when it is at
hand) and carries on from there. A file cut short (a run still writing, a full disk)
ends in a counted truncated record. Files are read in chunks, so memory follows the chunk
and the largest record, not the file.
"""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np

from ._crc32c import crc32c_many, mask

__all__ = ["read_records", "BAD_DATA", "DAMAGED", "TRUNCATED"]

BAD_DATA = "event records failed their data checksum"
DAMAGED = "damaged stretches of an event file skipped (length checksum failed)"
TRUNCATED = "event files end in a truncated record"

_HEADER = 12  # length (8) + its checksum (4)
_FOOTER = 4  # the data's checksum
_LENGTH = struct.Struct("<Q")
_RESYNC_WINDOW = 1 << 16


def read_records(path, skipped: Counter, *, chunk_size: int = 1 << 24):
    """Yield ``(buffer, starts, ends)``: the data of every record whose checksums verify.

    Parameters
    ----------
    path : path-like
        An event file.
    skipped : collections.Counter
        Receives the count of records or stretches skipped, by reason.
    chunk_size : int
        Bytes read at a time.

    Yields
    ------
    (bytes, numpy.ndarray, numpy.ndarray)
        A buffer and the start and end offsets, in it, of the data of intact records.
    """
    framer = _Framer(skipped)
    buffer = b""
    with open(path, "rb") as file:
        while True:
            chunk = file.read(chunk_size)
            at_end = not chunk
            buffer = buffer + chunk if buffer else chunk
            consumed, starts, ends = framer.frame(buffer, at_end)
            if len(starts):
                yield buffer, starts, ends
            buffer = buffer[consumed:]
            if at_end:
                break
    if buffer and not framer.in_damage:
        skipped[TRUNCATED] += 1


class _Framer:
    """Splits buffers into records; remembers whether it is inside a damaged stretch."""

    def __init__(self, skipped: Counter):
        self.skipped = skipped
        self.in_damage = False

    def frame(self, data: bytes, at_end: bool):
        """Frame ``data``; return (bytes consumed, starts, ends of intact records' data)."""
        buf = np.frombuffer(data, np.uint8)
        pos, kept = 0, []
        while True:
            heads, pos_after = _follow_lengths(data, pos)
            verified = _length_checksums_hold(buf, heads)
            intact = heads[:verified]
            if len(intact):
                self.in_damage = False
                kept.append(self._data_checked(buf, intact))
            if verified < len(heads):  # a length failed its checksum: resynchronise
                pos = self._resync(buf, heads[verified] + 1, at_end)
                continue
            pos = pos_after
            if len(buf) - pos >= _HEADER and not _length_checksums_hold(buf, [pos]):
                pos = self._resync(buf, pos + 1, at_end)  # an unfinished record, damaged
                continue
            break
        starts = np.concatenate([s for s, _ in kept]) if kept else np.empty(0, np.int64)
        ends = np.concatenate([e for _, e in kept]) if kept else np.empty(0, np.int64)
        return pos, starts, ends

    def _data_checked(self, buf, heads):
        lengths = _read_u64(buf, heads)
        starts, ends = heads + _HEADER, heads + _HEADER + lengths
        good = mask(crc32c_many(buf, starts, lengths)) == _read_u32(buf, ends)
        if not good.all():
            self.skipped[BAD_DATA] += int((~good).sum())
        return starts[good], ends[good]

    def _resync(self, buf, start: int, at_end: bool) -> int:
        """Offset of the next intact record from ``start``, or where to wait for more data."""
        if not self.in_damage:
            self.skipped[DAMAGED] += 1
            self.in_damage = True
        last = len(buf) - _HEADER  # the last offset a header fits at
        for window in range(start, last + 1, _RESYNC_WINDOW):
            offsets = np.arange(window, min(window + _RESYNC_WINDOW, last + 1))
            candidates = offsets[mask(crc32c_many(buf, offsets, np.full(len(offsets), 8)))
                                 == _read_u32(buf, offsets + 8)]
            for pos in candidates.tolist():
                end = pos + _HEADER + int(_read_u64(buf, np.array([pos]))[0])
                if end + _FOOTER > len(buf):
                    return pos  # its data is not here yet: its length's checksum will do
                if (mask(crc32c_many(buf, [pos + _HEADER], [end - pos - _HEADER]))
                        == _read_u32(buf, np.array([end])))[0]:
                    return pos
        # nothing here; keep the last bytes, a header may straddle the next chunk
        return len(buf) if at_end else max(start, last + 1)


def _follow_lengths(data: bytes, pos: int):
    """Offsets of the complete records from ``pos`` as their stored lengths chain them.

    The lengths are not verified yet; this loop is what makes the reader fast, so it only
    adds. Returns the offsets (int64) and the offset after the last complete record.
    """
    size, heads, length_at = len(data), [], _LENGTH.unpack_from
    while size - pos >= _HEADER:
        end = pos + _HEADER + length_at(data, pos)[0] + _FOOTER
        if end > size:
            break
        heads.append(pos)
        pos = end
    return np.array(heads, np.int64), pos


def _length_checksums_hold(buf, heads) -> int:
    """How many of ``heads``, from the first, have a length that matches its checksum."""
    heads = np.asarray(heads, np.int64)
    if heads.size == 0:
        return 0
    good = mask(crc32c_many(buf, heads, np.full(len(heads), 8))) == _read_u32(buf, heads + 8)
    return len(heads) if good.all() else int(np.argmin(good))


def _read_u64(buf, offsets):
    raw = buf[np.asarray(offsets, np.int64)[:, None] + np.arange(8)]
    return np.ascontiguousarray(raw).view("<u8").ravel().astype(np.int64)


def _read_u32(buf, offsets):
    raw = buf[np.asarray(offsets, np.int64)[:, None] + np.arange(4)]
    return np.ascontiguousarray(raw).view("<u4").ravel()
