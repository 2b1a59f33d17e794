"""Test-wide settings: quick, single-process sampling unless a test asks otherwise."""

import pytest

from scalingfit import rc_context


@pytest.fixture(autouse=True)
def _quick_sampling():
    # PyMC's own NUTS reuses compiled C across the many small fits of the suite, where
    # nutpie would recompile each model; tests of nutpie ask for it by name.
    with rc_context({"sample.sampler": "pymc", "sample.cores": 1}):
        yield
