"""Time a GD perceptron sweep: N = 500, 8 values of α from 1 to 32, 4 seeds (issue 3).

    PYTHONPATH=. python benchmarks/perceptron_sweep.py [--steps 3000] [--devices cpu,cuda]

Runs the sweep with the curvature step schedule (η_t = 1/ρ_t, ρ_t the top Hessian
eigenvalue; the same path in (λ, ε) as constant-step GD, see reference_runs.perceptron)
for enough steps that every run passes the theory's λ_opt(α), on the CPU and, when there is
one, on the GPU, and prints per device: the wall and CPU time of the whole sweep, the
median time per step (short repeated runs), the same for constant-step GD, and whether each
α passed λ_opt and its error rose after the optimum. The CPU here is shared: the CPU time
of this process is printed beside the wall time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from reference_runs.perceptron import PerceptronConfig, simulate
from scalingfit.theory import perceptron as theory

ALPHAS = tuple(float(a) for a in np.round(np.geomspace(1.0, 32.0, 8), 4))


def _synchronise(device):
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _timed(config):
    _synchronise(config.device)
    wall, cpu = time.perf_counter(), time.process_time()
    table = simulate(config)
    _synchronise(config.device)
    return table, time.perf_counter() - wall, time.process_time() - cpu


def _per_step(config, steps, repeats):
    """Median wall seconds per step: (time of 3·steps − time of steps)/(2·steps), which
    cancels the fixed costs (drawing the data, building the table), over ``repeats``."""

    def run_for(n):
        return PerceptronConfig(**{**config.__dict__, "steps": n, "log_points": 2})

    simulate(run_for(5))  # warm-up (allocations, CUDA context, kernels)
    times = [(_timed(run_for(3 * steps))[1] - _timed(run_for(steps))[1]) / (2 * steps)
             for _ in range(repeats)]
    return float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--devices", default="auto",
                        help="comma-separated devices; auto: cpu, and cuda when present")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    devices = args.devices.split(",") if args.devices != "auto" else (
        ["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    lam_opt = np.array([theory.optimum(a).lam for a in ALPHAS])
    print(f"alpha: {ALPHAS}\nlambda_opt (theory): {np.round(lam_opt, 2).tolist()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
          + (f", GPU {torch.cuda.get_device_name()}" if "cuda" in devices else ""))
    results = {}
    for device in devices:
        config = PerceptronConfig(n=args.n, alphas=ALPHAS, seeds=args.seeds,
                                  steps=args.steps, schedule="curvature", device=device)
        table, wall, cpu = _timed(config)
        step_curvature = _per_step(config, 50, args.repeats)
        step_constant = _per_step(PerceptronConfig(**{**config.__dict__,
                                                      "schedule": "constant", "lr": None}),
                                  50, args.repeats)
        results[device] = wall
        final = table[table.step == args.steps].groupby("train_size").norm_l2.min()
        best = table.loc[table.groupby("run_id").test_error.idxmin()]
        rose = (table.groupby("run_id").test_error.last()
                > table.groupby("run_id").test_error.min() * (1 + 1e-4))
        print(f"\n[{device}] sweep: {args.seeds} seeds x {len(ALPHAS)} alphas, N = {args.n}, "
              f"{args.steps} steps (curvature schedule)")
        print(f"  wall {wall:.1f} s ({wall / 60:.2f} min), process CPU time {cpu:.1f} s")
        print(f"  median per step: curvature schedule {step_curvature * 1e3:.2f} ms, "
              f"constant step {step_constant * 1e3:.2f} ms")
        print("  alpha  lambda_end/lambda_opt  median lambda*/lambda_opt  runs whose eps rose")
        for (size, lam_end), a, opt in zip(final.items(), ALPHAS, lam_opt, strict=True):
            runs = table.train_size == size
            star = best[best.train_size == size].norm_l2.median()
            n_rose = int(rose[table[runs].run_id.unique()].sum())
            print(f"  {a:6.3g}  {lam_end / opt:21.2f}  {star / opt:25.2f}  "
                  f"{n_rose}/{args.seeds}")
    if len(results) == 2:
        ratio = results["cpu"] / results["cuda"]
        print(f"\nspeed-up cuda vs cpu (whole sweep, wall): {ratio:.1f}x")


if __name__ == "__main__":
    main()
