#!/usr/bin/env bash
# The deep-net GPU check (docs/deepnets.md): fast path vs plain loop, norm overhead, a real run; results in $OUT.
cd "$(dirname "$0")/.." && PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}" exec "${PYTHON:-python3}" -m reference_runs.device_check --out "${OUT:-out/device_check}" "$@"
