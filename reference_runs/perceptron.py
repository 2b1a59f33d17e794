"""Teacher–student perceptron trained on the logistic loss: the analytic anchor of the laws.

    python -m reference_runs perceptron --n 500 --alpha 1,2,4,8 --seeds 4 --steps 20000 \\
        [--optimizer gd|gd-wd|adam|projected] [--lr LR] --out runs.csv

A teacher w* with ‖w*‖² = N labels P = αN inputs with i.i.d. ±1 (``--inputs binary``,
default) or standard Gaussian entries: y = sign(w*·x). A student w, from a small random
initialisation (‖w‖/√N ≈ ``--init-scale``), minimises the mean of
g(Δ_μ) = log(1 + exp(−2Δ_μ)), Δ_μ = y_μ w·x_μ/√N, by full-batch

* ``gd``: gradient descent, no regularisation (implicit bias towards max-margin);
* ``gd-wd``: the same with weight decay, w ← w − η(N∇L + wd·w), i.e. a ridge penalty
  κ = α·wd on Σ_μ g: the norm stops growing at the ridge solution's (``--weight-decay``
  is for gd-wd only: any other optimizer rejects it);
* ``adam``: Adam (β = 0.9, 0.999, ε = 1e-8) on the same gradient, without weight decay;
* ``projected``: gradient descent projected after every step onto the sphere
  ‖w‖ = r_t√N, with r_t a log-linear ramp over the run (``--radius START:END``) or a fixed
  radius (``--radius R``; the norm then never moves, so a run has no optimum along λ).
  ``--radius`` is for projected only.

The step is taken on w with the gradient scaled by N (η N∇_w L, L the mean loss), so that η
is O(1): the largest stable step at initialisation, where g'' = 1 everywhere, is
2/(1 + 1/√α)² (the top of the Marchenko–Pastur spectrum of Σ x xᵀ/P). The default η for
gd, gd-wd and projected is 0.8 of that, separately for each α (the ``lr`` column says
which η each run used); Adam's default is 0.01.

Logged at about ``--log-points`` log-spaced steps (and step 0; evenly spaced steps for
``projected`` on a ramp, i.e. evenly spaced in log λ): λ = ‖w‖/√N (``norm_l2``),
the exact generalisation error ε = arccos(R)/π with R the cosine of w and w*
(``test_error``: no test set, hence no ``n_test``), the training error and the mean
training loss. Output: the canonical table (architecture ``perceptron``, dataset
``teacher-student``, train_size P), with optimizer, lr, weight_decay, alpha, n, inputs,
init_scale and radius as metadata columns.

All (seed, α) runs advance together in one batched torch computation, on the GPU when
there is one. Within a seed the α values share the teacher and *nested* inputs (the run at
α uses the first αN of the seed's inputs, as training subsets of one dataset usually are):
every row is read once per step for all the α that use it. P = round(αN): two α values
that give the same P are an error (the runs would be merged).

Progress goes to stderr: a progress bar on a terminal; otherwise (a log file, nohup,
SLURM) a plain line when the run starts, about every 10 % of the steps but at most every
30 s, and when it ends; ``-q`` silences it, not the final ``wrote ...`` line.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from scalingfit.errors import ScalingfitError, require

from .config import float_list
from .devices import resolve_device

__all__ = ["PerceptronConfig", "OPTIMIZERS", "stable_lr", "log_steps", "simulate",
           "add_arguments", "run"]

OPTIMIZERS = ("gd", "gd-wd", "adam", "projected")
INPUTS = ("binary", "gaussian")
SCHEDULES = ("constant", "curvature")
ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8
#: With ``schedule="curvature"``, steps between two updates of the curvature estimate.
CURVATURE_EVERY = 10
#: ... and the most its step may grow over the run (a guard for the separable tail, where
#: the curvature decays like the loss, e^(−2λk), and underflows in float32).
MAX_STEP_GROWTH = 1000.0


def stable_lr(alpha):
    """Largest stable GD step at initialisation: 2 over the top eigenvalue of Σ x xᵀ/P."""
    return 2.0 / (1.0 + 1.0 / math.sqrt(alpha)) ** 2


def log_steps(steps, points):
    """Step 0 and about ``points`` log-spaced steps from 1 to ``steps`` (always included)."""
    logged = np.unique(np.round(np.geomspace(1, steps, points)).astype(int))
    return np.concatenate([[0], logged])


@dataclass(frozen=True)
class PerceptronConfig:
    """Everything that defines a perceptron sweep (saved beside the output as metadata).

    Attributes
    ----------
    n : int
        Input dimension N.
    alphas : tuple of float
        α = P/N values; P = round(αN). Two α with the same P are an error.
    seeds : int
        Number of seeds, ``first_seed``, ``first_seed + 1``, ...
    steps : int
        Optimisation steps.
    optimizer : {"gd", "gd-wd", "adam", "projected"}
    lr : float or None
        Step size η for every α; None: 0.8·:func:`stable_lr` (α) (Adam: 0.01). With
        ``schedule="curvature"``, the factor c of η_t = c/ρ_t instead (None: 1).
    schedule : {"constant", "curvature"}
        ``curvature`` (gd, gd-wd, projected): η_t = c/ρ_t with ρ_t the top eigenvalue of
        the Hessian N∇²L, tracked by warm-started power iteration every
        :data:`CURVATURE_EVERY` steps. A time change of the same gradient flow, not a
        different optimiser: η_tρ_t stays at c (constant η starts at 1.6 and falls as
        the curvature, ~1/λ, does), so it traces the same path (λ, ε) in far fewer
        steps once λ is large.
    weight_decay : float
        wd of ``gd-wd`` (ridge κ = α·wd); ignored otherwise.
    radius : tuple of float or None
        ``projected``: (start, end) of the log-linear ramp of λ; start = end for a fixed
        norm. None: (0.05, 100).
    inputs : {"binary", "gaussian"}
    init_scale : float
        Standard deviation of the student's initial entries (λ at step 0 ≈ init_scale).
    log_points : int
        About this many logged steps besides step 0.
    device : str
        "auto" (CUDA when available), "cpu", "cuda", ...
    dtype : {"float32", "float64"}
    """

    n: int = 500
    alphas: tuple = (1.0, 2.0, 4.0)
    seeds: int = 4
    first_seed: int = 0
    steps: int = 2000
    optimizer: str = "gd"
    lr: float | None = None
    schedule: str = "constant"
    weight_decay: float = 1e-4
    radius: tuple | None = None
    inputs: str = "binary"
    init_scale: float = 1e-3
    log_points: int = 50
    device: str = "auto"
    dtype: str = "float32"

    def __post_init__(self):
        problems = []
        if self.n < 2:
            problems.append(f"n must be ≥ 2, got {self.n}")
        if not self.alphas or min(self.alphas) <= 0:
            problems.append(f"every alpha must be > 0, got {list(self.alphas)}")
        elif min(self.alphas) * self.n < 1:
            problems.append(f"alpha*n must be ≥ 1 (alpha={min(self.alphas):g}, n={self.n})")
        else:
            problems += self._colliding_alphas()
        if self.seeds < 1 or self.steps < 1 or self.log_points < 2:
            problems.append("seeds and steps must be ≥ 1 and log_points ≥ 2")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule must be one of {', '.join(SCHEDULES)}, "
                            f"got {self.schedule!r}")
        elif self.schedule == "curvature" and self.optimizer == "adam":
            problems.append("the curvature schedule is for gd, gd-wd and projected, not adam")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}, "
                            f"got {self.optimizer!r}")
        if self.inputs not in INPUTS:
            problems.append(f"inputs must be one of {', '.join(INPUTS)}, got {self.inputs!r}")
        if self.lr is not None and not self.lr > 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.weight_decay < 0 or self.init_scale <= 0:
            problems.append("weight_decay must be ≥ 0 and init_scale > 0")
        if self.radius is not None and (len(self.radius) != 2 or min(self.radius) <= 0):
            problems.append(f"radius must be one or two values > 0, got {self.radius}")
        if self.dtype not in ("float32", "float64"):
            problems.append(f"dtype must be float32 or float64, got {self.dtype!r}")
        if problems:
            raise ScalingfitError("invalid perceptron settings: " + "; ".join(problems) + ".")

    def _colliding_alphas(self):
        """A problem for each α that gives the same P = round(αN) as an earlier one."""
        problems, first_alpha = [], {}
        for alpha in self.alphas:
            size = max(1, round(alpha * self.n))
            if size not in first_alpha:
                first_alpha[size] = alpha
            elif first_alpha[size] == alpha:
                problems.append(f"alpha {alpha:g} is given twice")
            else:
                problems.append(f"alpha {first_alpha[size]:g} and {alpha:g} both give "
                                f"P = round(alpha*n) = {size} at n = {self.n}, so their "
                                "runs would be one: drop one of them or raise n")
        return problems

    def effective_settings(self):
        """The settings as the runs use them and the table records them: α = P/N, the
        step size of each α (one number when they are equal), weight decay 0 unless
        gd-wd, the radius (start:end, as in the table) only for projected."""
        settings = asdict(self)
        sizes, step_sizes = self.train_sizes, self.step_sizes()
        settings["alphas"] = [size / self.n for size in sizes]
        settings["lr"] = (step_sizes[0] if len(set(step_sizes)) == 1
                          else [float(f"{lr:.6g}") for lr in step_sizes])
        settings["schedule"] = self.schedule if self.optimizer != "adam" else "constant"
        settings["weight_decay"] = self.weight_decay if self.optimizer == "gd-wd" else 0.0
        if self.optimizer == "projected":
            start, end = self.radius or (0.05, 100.0)
            settings["radius"] = f"{start:g}" if start == end else f"{start:g}:{end:g}"
        else:
            del settings["radius"]
        return settings

    @property
    def train_sizes(self):
        """P for each distinct α, ascending."""
        return sorted({max(1, round(a * self.n)) for a in self.alphas})

    def step_sizes(self):
        """η for each P of :attr:`train_sizes`."""
        if self.lr is not None:
            return [self.lr] * len(self.train_sizes)
        if self.schedule == "curvature":
            return [1.0] * len(self.train_sizes)
        if self.optimizer == "adam":
            return [0.01] * len(self.train_sizes)
        return [0.8 * stable_lr(p / self.n) for p in self.train_sizes]

    def logged_steps(self):
        """The steps logged: log-spaced (:func:`log_steps`), except for ``projected`` on a
        ramp, whose λ is log-linear in the step: there, evenly spaced steps are evenly
        spaced in log λ."""
        start, end = self.radius or (0.05, 100.0)
        if self.optimizer == "projected" and start != end:
            return np.unique(np.round(np.linspace(0, self.steps, self.log_points + 1))
                             ).astype(int)
        return log_steps(self.steps, self.log_points)

    def radius_at(self, step):
        """λ imposed by ``projected`` at ``step`` (log-linear ramp)."""
        start, end = self.radius or (0.05, 100.0)
        return start * (end / start) ** (step / self.steps)


def _teacher_and_inputs(config, seed, rows, torch, dtype):
    """One seed's teacher and its ``rows`` inputs multiplied by their labels, z = y·x.

    Drawn on the CPU from a seeded generator, so a seed gives the same data on any device
    and for any set of α (rows beyond a run's P are drawn but unused). The loss and its
    gradient see the inputs only through z.
    """
    generator = torch.Generator().manual_seed(seed)
    teacher = torch.randn(config.n, generator=generator, dtype=torch.float64)
    teacher *= math.sqrt(config.n) / teacher.norm()
    if config.inputs == "binary":
        x = torch.randint(0, 2, (rows, config.n), generator=generator, dtype=torch.int8)
        x = (2 * x - 1).to(dtype)
    else:
        x = torch.randn(rows, config.n, generator=generator, dtype=dtype)
    labels = torch.sign(x.to(torch.float64) @ teacher)
    labels[labels == 0] = 1.0  # measure zero for Gaussian inputs; a tie-break for ±1
    return teacher.to(dtype), x * labels.to(dtype)[:, None]


def _initial_student(config, seed, size, torch, dtype):
    """The run (seed, P)'s initial student, drawn from its own stream: a run's result does
    not depend on the other α it is batched with."""
    stream = int(np.random.SeedSequence([seed, size]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(stream)
    return config.init_scale * torch.randn(config.n, generator=generator, dtype=dtype)


def simulate(config: PerceptronConfig, *, progress=None) -> pd.DataFrame:
    """Train every (seed, α) run of ``config`` and return the canonical table.

    Parameters
    ----------
    config : PerceptronConfig
    progress : callable, optional
        Called as ``progress(steps_done)`` about 200 times along the run.

    Returns
    -------
    pandas.DataFrame
        Validated canonical table, one row per (run, logged step).
    """
    torch = require("torch", "torch")
    from scalingfit.ingest.table import validate

    device = resolve_device(config.device)
    dtype = getattr(torch, config.dtype)
    sizes = config.train_sizes
    S, A, N, rows = config.seeds, len(sizes), config.n, sizes[-1]
    seeds = range(config.first_seed, config.first_seed + S)

    # z = y·x for every seed, nested across α: run a uses rows [0, P_a).
    teachers, inputs, init = [], [], []
    for seed in seeds:
        teacher, z = _teacher_and_inputs(config, seed, rows, torch, dtype)
        teachers.append(teacher)
        inputs.append(z)
        init.append(torch.stack([_initial_student(config, seed, size, torch, dtype)
                                 for size in sizes]))
    Z = torch.stack(inputs).to(device)                      # (S, P_max, N)
    del inputs
    teacher = torch.stack(teachers).to(device)              # (S, N)
    W = torch.stack(init).to(device)                        # (S, A, N)
    # Rows [P_{b-1}, P_b) form band b, used by runs b..A-1: each band is read once per step.
    bands = [(b, 0 if b == 0 else sizes[b - 1], sizes[b]) for b in range(A)]
    P = torch.tensor(sizes, dtype=dtype, device=device)
    lr = torch.tensor(config.step_sizes(), dtype=dtype, device=device)[None, :, None]
    root_n = math.sqrt(N)
    if config.optimizer == "projected":
        W *= config.radius_at(0) * root_n / W.norm(dim=2, keepdim=True)
    if config.optimizer == "adam":
        first_moment, second_moment = torch.zeros_like(W), torch.zeros_like(W)

    def margins_of(V):
        """Δ = z·v/√N of every band's rows under the runs that use them."""
        return [torch.bmm(Z[:, start:stop], V[:, b:].transpose(1, 2)) / root_n
                for b, start, stop in bands]

    def rows_to_weights(per_row):
        """Σ over each run's rows of per_row[μ]·z_μ: (S, A, N)."""
        total = torch.zeros_like(W)
        for (b, start, stop), values in zip(bands, per_row, strict=True):
            total[:, b:] += torch.bmm(values.transpose(1, 2), Z[:, start:stop])
        return total

    def top_curvature(margins, iterations):
        """Power iteration (warm-started) for the top eigenvalue of N∇²L, per run."""
        nonlocal eigenvector
        for _ in range(iterations):
            product = rows_to_weights([
                torch.bmm(Z[:, start:stop], eigenvector[:, b:].transpose(1, 2))
                * (4.0 * torch.sigmoid(2.0 * m) * torch.sigmoid(-2.0 * m)) / P[b:]
                for (b, start, stop), m in zip(bands, margins, strict=True)])
            rayleigh = (product * eigenvector).sum(2, keepdim=True)
            length = product.norm(dim=2, keepdim=True)
            # Deep in the separable tail every g''(Δ) underflows: keep the old vector.
            eigenvector = torch.where(length > 0, product / length.clamp_min(1e-300),
                                      eigenvector)
        return rayleigh

    adaptive = config.schedule == "curvature"
    if adaptive:
        eigenvector = torch.randn(W.shape, dtype=dtype, device=device)
        eigenvector /= eigenvector.norm(dim=2, keepdim=True)
    eta = lr
    logged = set(config.logged_steps().tolist())
    records = []
    report_every = max(1, config.steps // 200)
    for step in range(config.steps + 1):
        margins = margins_of(W)
        if step in logged:
            records.append(_measure(torch, W, teacher, margins, bands, P, root_n))
        if step == config.steps:
            break
        # Descent direction −N∇L = √N Σ_μ 2σ(−2Δ_μ) z_μ / P.
        direction = root_n * rows_to_weights(
            [2.0 * torch.sigmoid(-2.0 * m) / P[b:]
             for (b, _, _), m in zip(bands, margins, strict=True)])
        if adaptive and step % CURVATURE_EVERY == 0:
            curvature = top_curvature(margins, 30 if step == 0 else 1)
            if step == 0:
                floor = MAX_STEP_GROWTH ** -1 * curvature
            eta = lr / torch.maximum(curvature, floor)
        if config.optimizer == "gd":
            W += eta * direction
        elif config.optimizer == "gd-wd":
            W += eta * (direction - config.weight_decay * W)
        elif config.optimizer == "projected":
            W += eta * direction
            W *= config.radius_at(step + 1) * root_n / W.norm(dim=2, keepdim=True)
        else:  # adam, on the gradient N∇L = −direction
            beta1, beta2 = ADAM_BETAS
            first_moment.mul_(beta1).add_(direction, alpha=-(1 - beta1))
            second_moment.mul_(beta2).addcmul_(direction, direction, value=1 - beta2)
            m_hat = first_moment / (1 - beta1 ** (step + 1))
            v_hat = second_moment / (1 - beta2 ** (step + 1))
            W -= lr * m_hat / (v_hat.sqrt() + ADAM_EPS)
        if progress is not None and (step + 1) % report_every == 0:
            progress(step + 1)
    if progress is not None:
        progress(config.steps)
    return validate(_table(config, records), source="perceptron simulation")


def _measure(torch, W, teacher, margins, bands, P, root_n):
    """(λ, ε, training error, mean training loss) of every run, as float64 arrays (S, A)."""
    S, A = W.shape[:2]
    loss = torch.zeros(S, A, dtype=torch.float64, device=W.device)
    errors = torch.zeros(S, A, dtype=torch.float64, device=W.device)
    for (b, _, _), m in zip(bands, margins, strict=True):
        loss[:, b:] += torch.nn.functional.softplus(-2.0 * m).sum(1)
        errors[:, b:] += (m <= 0).sum(1)
    norm = W.norm(dim=2)
    overlap = (torch.einsum("san,sn->sa", W, teacher) / (norm * root_n)).clamp(-1.0, 1.0)
    sizes = P.double()
    return ((norm / root_n).double().cpu().numpy(),
            (torch.arccos(overlap) / math.pi).double().cpu().numpy(),
            (errors / sizes).cpu().numpy(), (loss / sizes).cpu().numpy())


def _table(config, records):
    """The logged arrays as canonical rows, one per (seed, α, logged step)."""
    sizes, step_sizes = config.train_sizes, config.step_sizes()
    seeds = np.arange(config.first_seed, config.first_seed + config.seeds)
    frames = []
    for step, (lam, eps, train_error, train_loss) in zip(
            config.logged_steps(), records, strict=True):
        seed_grid, size_index = np.meshgrid(seeds, np.arange(len(sizes)), indexing="ij")
        frames.append(pd.DataFrame({
            "step": step, "seed": seed_grid.ravel(), "index": size_index.ravel(),
            "test_error": eps.ravel(), "train_error": train_error.ravel(),
            "train_loss": train_loss.ravel(), "norm_l2": lam.ravel()}))
    table = pd.concat(frames, ignore_index=True)
    P = np.asarray(sizes)[table.pop("index")]
    table.insert(0, "train_size", P)
    table.insert(0, "dataset", "teacher-student")
    table.insert(0, "architecture", "perceptron")
    lr_of = dict(zip(sizes, step_sizes, strict=True))
    table.insert(0, "run_id", [f"perceptron-{config.optimizer}-N{config.n}-P{p}-seed{s}"
                               for p, s in zip(P, table["seed"], strict=True)])
    table["optimizer"] = config.optimizer
    table["lr"] = [lr_of[p] for p in P]
    table["lr_schedule"] = config.schedule if config.optimizer != "adam" else "constant"
    table["weight_decay"] = config.weight_decay if config.optimizer == "gd-wd" else 0.0
    table["alpha"] = P / config.n
    table["n"] = config.n
    table["inputs"] = config.inputs
    table["init_scale"] = config.init_scale
    if config.optimizer == "projected":
        table["radius"] = config.effective_settings()["radius"]
    table.index = pd.RangeIndex(2, len(table) + 2)  # CSV line numbers, for messages
    return table


# ---------------------------------------------------------------------------------------
# Command line


def _radius(text):
    parts = text.split(":")
    try:
        values = tuple(float(v) for v in parts)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected R or START:END, got {text!r}") from err
    if len(values) not in (1, 2):
        raise argparse.ArgumentTypeError(f"expected R or START:END, got {text!r}")
    return values * 2 if len(values) == 1 else values


def add_arguments(parser):
    parser.add_argument("--n", type=int, default=500, help="input dimension N (default 500)")
    parser.add_argument("--alpha", type=float_list, default=(1.0, 2.0, 4.0), metavar="A,B,...",
                        help="alpha = P/N values, P = round(alpha N); two alphas with the "
                             "same P are an error (default 1,2,4)")
    parser.add_argument("--seeds", type=int, default=4, help="number of seeds (default 4)")
    parser.add_argument("--first-seed", type=int, default=0, help="first seed (default 0)")
    parser.add_argument("--steps", type=int, default=2000,
                        help="optimisation steps (default 2000)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="gd",
                        help="gd (default), gd-wd (gd with weight decay), adam (no weight "
                             "decay) or projected (gd on the sphere of radius lambda)")
    parser.add_argument("--lr", type=float, metavar="ETA",
                        help="step size for every alpha (default: 0.8 x the largest stable "
                             "GD step at each alpha; adam: 0.01)")
    parser.add_argument("--schedule", choices=SCHEDULES, default="constant",
                        help="constant step (default), or curvature: step = LR / top "
                             "Hessian eigenvalue, re-estimated every 10 steps (same path "
                             "in lambda and error, far fewer steps; LR default 1)")
    parser.add_argument("--weight-decay", type=float, metavar="WD",
                        help="gd-wd only, an error with the other optimizers: "
                             "w <- w - lr (N grad L + wd w) (default 1e-4)")
    parser.add_argument("--radius", type=_radius, metavar="R|START:END",
                        help="projected only, an error with the other optimizers: fixed "
                             "norm lambda, or a log-linear ramp (default 0.05:100)")
    parser.add_argument("--inputs", choices=INPUTS, default="binary",
                        help="input entries: +-1 (binary, default) or standard Gaussian")
    parser.add_argument("--init-scale", type=float, default=1e-3,
                        help="std of the student's initial entries (default 1e-3)")
    parser.add_argument("--log-points", type=int, default=50,
                        help="about this many log-spaced logged steps (default 50)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="floating-point precision of the computation (default float32)")
    parser.add_argument("--out", required=True, help="output table (.csv or .parquet)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress output (the final 'wrote ...' line stays)")


def _only_for(args):
    """Reject the flags that the chosen optimizer would ignore."""
    problems = []
    if args.weight_decay is not None and args.optimizer != "gd-wd":
        problems.append(f"--weight-decay is for --optimizer gd-wd only; {args.optimizer} "
                        "uses no weight decay")
    if args.radius is not None and args.optimizer != "projected":
        problems.append(f"--radius is for --optimizer projected only; {args.optimizer} "
                        "does not constrain the norm")
    if problems:
        them = "them" if len(problems) > 1 else "it"
        raise ScalingfitError("; ".join(problems) + f": drop {them} or change --optimizer.")


def run(args):
    from scalingfit.ingest.table import write_table
    from scalingfit.progress import Progress

    _only_for(args)
    config = PerceptronConfig(
        n=args.n, alphas=args.alpha, seeds=args.seeds, first_seed=args.first_seed,
        steps=args.steps, optimizer=args.optimizer, lr=args.lr, schedule=args.schedule,
        radius=args.radius, inputs=args.inputs, init_scale=args.init_scale,
        log_points=args.log_points, device=args.device, dtype=args.dtype,
        **({} if args.weight_decay is None else {"weight_decay": args.weight_decay}))
    runs = config.seeds * len(config.train_sizes)
    with Progress("perceptron", f"{config.optimizer}, {runs} runs", config.steps,
                  "step", quiet=args.quiet) as progress:
        table = simulate(config, progress=progress.update)
    write_table(table, args.out)
    print(f"wrote {len(table)} rows ({runs} runs, settings {config.effective_settings()}) "
          f"to {args.out}", flush=True)
    return 0
