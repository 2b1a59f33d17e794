#!/usr/bin/env bash
# The perceptron's GPU checks in one device call (issue 3), for a session that is lent a GPU:
#
#   run(command="bash benchmarks/gpu_perceptron.sh", timeout_s=420)
#
# There, python3 is the image's own (torch with CUDA, numpy, scipy, pandas, rich, pytest);
# nothing needs installing. It runs the GPU test (CUDA against CPU results), times the
# benchmark sweep of benchmarks/perceptron_sweep.py on the GPU (compare its wall time with
# the CPU figure in docs/perceptron.md: the goal is >= 20x), and, as a bonus, writes the
# constant-step GD sweep (8 alphas from 1 to 32, 8 seeds, N = 500) that takes hours on 2
# CPU cores, into $OUT. Expected device time: a few minutes.
set -euo pipefail
export PYTHONPATH="$PWD"
OUT="${OUT:-/tmp/gpu_perceptron}"
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"

python3 -m pytest -q -p no:cacheprovider -m gpu tests/integration/test_perceptron_sim.py \
    2>&1 | tee "$OUT/gpu_test.txt"

python3 benchmarks/perceptron_sweep.py --devices cuda --repeats 5 2>&1 \
    | tee "$OUT/gpu_benchmark.txt"

ALPHAS=1,1.6407,2.6918,4.4164,7.2458,11.888,19.5042,32
time python3 -m reference_runs perceptron --n 500 --alpha "$ALPHAS" --seeds 8 \
    --steps 60000 --optimizer gd --device cuda -q --out "$OUT/gd_constant.csv"
