"""CRC-32C (Castagnoli) of many records at once, masked as TFRecord files store it.

Checking two checksums per record one Python call at a time costs more than everything
else in reading a TensorBoard log, so short records (scalars, a few dozen bytes) are
checked together with numpy: records are right-aligned in a matrix, zero-padded on the
left, and the table-driven CRC runs down the columns for all of them at once. Leading
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
    if buf.size == 0:  # only empty records fit; give the padding something to read
        buf = np.zeros(1, np.uint8)
    out = np.empty(len(starts), np.uint32)
    done = np.zeros(len(starts), bool)
    low = -1
    for width in _WIDTHS:
        chosen = np.flatnonzero((lengths > low) & (lengths <= width))
        low = width
        if chosen.size == 0:
            continue
        start, length = starts[chosen], lengths[chosen]
        # column j of record i is byte start + length - width + j; left of start is padding
        index = (start + length - width)[None, :] + np.arange(width)[:, None]
        columns = np.where(index >= start[None, :], buf.take(index, mode="clip"), 0)
        crc = np.zeros(chosen.size, np.uint32)
        low_byte = crc.view(np.uint8)[::4] if _LITTLE_ENDIAN else None
        for column in columns.astype(np.uint8):
            if low_byte is not None:  # index with the register's low byte, no masking
                crc = _TABLE[low_byte ^ column] ^ (crc >> 8)
                low_byte = crc.view(np.uint8)[::4]
            else:
                crc = _TABLE[(crc ^ column) & 0xFF] ^ (crc >> 8)
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
