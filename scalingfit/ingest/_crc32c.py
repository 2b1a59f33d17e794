"""CRC-32C (Castagnoli) of many records at once, masked as TFRecord files store it.

Checking two checksums per record one Python call at a time costs more than everything
else in reading a TensorBoard log, so short records (scalars, a few dozen bytes) are
checked together with numpy: records are right-aligned in a matrix, zero-padded on the
left, and the table-driven CRC runs down its columns of 32-bit words for all of them at
once (slicing-by-4, with two tables of 65,536 entries that each fold two bytes). Leading
zeros leave a zero register at zero, and the CRC is linear, so the standard initial
register ``0xFFFFFFFF`` is added back per length afterwards:
``crc(M) = fold(0, M) ^ fold(0xFFFFFFFF, zeros(len(M)))``.

Long records (images, graphs) use ``google-crc32c`` or ``crc32c`` when installed (the
``tensorboard`` extra brings the first), else a pure-Python loop.
"""

from __future__ import annotations

import numpy as np

__all__ = ["crc32c", "crc32c_many", "mask", "masked_crc32c"]

_POLYNOMIAL = 0x82F63B78  # CRC-32C, reflected
_MASK_DELTA = 0xA282EAD8
_LITTLE_ENDIAN = np.little_endian
#: Right-aligned widths of the vectorised path (close, so that little is padding); longer
#: records are checked one by one.
_WIDTHS = (*range(8, 64, 8), *range(64, 128, 16), *range(128, 256, 32), *range(256, 513, 64))


def _byte_table() -> list:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLYNOMIAL if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE_LIST = _byte_table()
_TABLE = np.array(_TABLE_LIST, np.uint32)


def _word_tables():
    """Tables that fold the low and the high two bytes of ``register ^ word`` at once.

    Slicing-by-4: after xoring a little-endian word into the register, the new register
    is ``T3[b0] ^ T2[b1] ^ T1[b2] ^ T0[b3]``, with ``T0`` the byte table and ``T(k+1)`` the
    register ``T(k)`` leaves after one more zero byte. Pairs of them become two tables
    indexed by 16 bits: ``low[b0 | b1 << 8] = T3[b0] ^ T2[b1]``, ``high`` likewise.
    """
    tables = [_TABLE]
    for _ in range(3):
        tables.append((tables[-1] >> np.uint32(8)) ^ _TABLE[tables[-1] & 0xFF])
    pair = np.arange(1 << 16, dtype=np.uint32)
    low = tables[3][pair & 0xFF] ^ tables[2][pair >> 8]
    high = tables[1][pair & 0xFF] ^ tables[0][pair >> 8]
    return low, high


_LOW, _HIGH = _word_tables()


def _python_crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _TABLE_LIST[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _zero_folds(count: int) -> np.ndarray:
    """Register after 0..count zero bytes from the initial 0xFFFFFFFF."""
    folds, crc = [0xFFFFFFFF], 0xFFFFFFFF
    for _ in range(count):
        crc = _TABLE_LIST[crc & 0xFF] ^ (crc >> 8)
        folds.append(crc)
    return np.array(folds, np.uint32)


_ZERO_FOLDS = _zero_folds(_WIDTHS[-1])

try:
    from google_crc32c import value as crc32c
except ImportError:  # pragma: no cover - depends on the environment
    try:
        from crc32c import crc32c
    except ImportError:
        crc32c = _python_crc32c


def crc32c_many(buf: np.ndarray, starts, lengths) -> np.ndarray:
    """CRC-32C of ``buf[start:start + length]`` for every pair, as uint32.

    Parameters
    ----------
    buf : numpy.ndarray of uint8
    starts, lengths : array-like of int
    """
    starts = np.asarray(starts, np.int64)
    lengths = np.asarray(lengths, np.int64)
    if len(starts) == 0:
        return np.empty(0, np.uint32)
    # the bytes the records span, after zeros: every record has a full row before its end
    first, last = int(starts.min()), int((starts + lengths).max())
    padded = np.concatenate([np.zeros(_WIDTHS[-1], np.uint8), buf[first:last]])
    out = np.empty(len(starts), np.uint32)
    done = np.zeros(len(starts), bool)
    low = -1
    for width in _WIDTHS:
        chosen = np.flatnonzero((lengths > low) & (lengths <= width))
        low = width
        if chosen.size == 0:
            continue
        length = lengths[chosen]
        # row i: the width bytes that end where record i ends; left of its start, zeros
        windows = np.lib.stride_tricks.sliding_window_view(padded, width)
        rows = windows[starts[chosen] - first + length + (_WIDTHS[-1] - width)]
        rows[np.arange(width) < (width - length)[:, None]] = 0
        words = np.ascontiguousarray(rows.view("<u4").T)  # one column of words per row
        crc = np.zeros(chosen.size, np.uint32)
        for word in words:
            crc ^= word
            if _LITTLE_ENDIAN:  # the register's two halves, as views
                halves = crc.view(np.uint16).reshape(-1, 2)
                crc = _LOW[halves[:, 0]] ^ _HIGH[halves[:, 1]]
            else:
                crc = _LOW[crc & 0xFFFF] ^ _HIGH[crc >> 16]
        out[chosen] = crc ^ _ZERO_FOLDS[length] ^ np.uint32(0xFFFFFFFF)
        done[chosen] = True
    for i in np.flatnonzero(~done):
        out[i] = crc32c(buf[starts[i]:starts[i] + lengths[i]].tobytes())
    return out


def mask(crc):
    """TFRecord's masking: rotate right by 15 bits and add a constant (uint32 arrays)."""
    crc = np.asarray(crc, np.uint32)
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(_MASK_DELTA)


def masked_crc32c(data: bytes) -> int:
    """Masked CRC-32C of one byte string."""
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF
