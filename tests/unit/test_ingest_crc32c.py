"""CRC-32C of many records at once agrees with the reference implementations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalingfit.ingest._crc32c import (
    _python_crc32c,
    crc32c,
    crc32c_many,
    mask,
    masked_crc32c,
)


def test_the_standard_check_value():
    # CRC-32C("123456789") = 0xE3069283 (RFC 3720, appendix B.4)
    assert _python_crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"123456789") == 0xE3069283
    data = np.frombuffer(b"xx123456789", np.uint8)
    assert crc32c_many(data, [2], [9])[0] == 0xE3069283


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.data())
def test_many_records_at_once_match_one_at_a_time(blob, data):
    buf = np.frombuffer(blob, np.uint8)
    spans = data.draw(st.lists(st.tuples(st.integers(0, len(blob)), st.integers(0, 900)),
                               max_size=40))
    spans = [(s, min(n, len(blob) - s)) for s, n in spans]
    starts = [s for s, _ in spans]
    lengths = [n for _, n in spans]
    got = crc32c_many(buf, starts, lengths)
    assert got.tolist() == [_python_crc32c(blob[s:s + n]) for s, n in spans]


def test_masking_matches_tensorboards_own():
    stub = pytest.importorskip("tensorboard.compat.tensorflow_stub.pywrap_tensorflow")
    rng = np.random.default_rng(1)
    for size in (0, 1, 8, 31, 64, 513, 4000):
        blob = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert masked_crc32c(blob) == stub.masked_crc32c(blob)
        buf = np.frombuffer(blob, np.uint8)
        assert mask(crc32c_many(buf, [0], [size]))[0] == stub.masked_crc32c(blob)


def test_agrees_with_google_crc32c():
    google = pytest.importorskip("google_crc32c")
    rng = np.random.default_rng(2)
    buf = rng.integers(0, 256, 5000, dtype=np.uint8)
    starts = rng.integers(0, 2000, 200)
    lengths = rng.integers(0, 3000, 200)
    expected = [google.value(buf[s:s + n].tobytes()) for s, n in zip(starts, lengths, strict=True)]
    assert crc32c_many(buf, starts, lengths).tolist() == expected
