"""Train a CNN, ResNet, ViT or MLP on a subset of P examples and write the canonical table.

    python -m reference_runs train --arch cnn --dataset cifar10 --data-root data \\
        --train-size 4096 --seed 0 --epochs 500 --out runs/cnn_P4096_s0.csv

Settings, later winning: the defaults of :class:`TrainConfig`; the dataset's file in
``reference_runs/configs/`` (its ``train:`` section, then its ``<arch>:`` section);
``--config FILE.yaml``; the named flags; ``--key=value`` overrides (``--model.dim=128``).
The resolved settings are written beside the output (``--out runs/a.csv`` gives
``runs/a.config.yaml``).

Several seeds (``--seeds 0 1 2 3``: seed values, not a count) train together as one
vmapped stack on one device; if one of them diverges, the whole stack stops with an error
and no table (train that seed alone, or lower the learning rate). Evaluation on the full
test split, the P training examples and all five norms happens at epoch 0 and at about
``n_evals`` log-spaced epochs, or, with ``--eval-every K``, at every K-th epoch (evenly
spaced) and the last; between two evaluations a line reports progress at least once a
minute. A checkpoint (``runs/a.ckpt``) is written at the end of an
epoch once ``checkpoint_every_s`` seconds have passed since the last one; rerunning the
same command while it exists resumes from it, and the table, written atomically at the
end, has each step exactly once. Once the table is written the checkpoint goes: a rerun
trains anew (a sweep skips finished jobs instead).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from scalingfit.errors import ScalingfitError, require
from scalingfit.norms import CONVENTIONS

require("torch", "torch")  # a clear message naming the extra, before the models import it

from . import config as settings  # noqa: E402
from .data import DATASETS, OFFLINE, check_options, draw_train_subset, load  # noqa: E402
from .devices import resolve_device  # noqa: E402
from .models import ARCHITECTURES  # noqa: E402

__all__ = ["TrainConfig", "resolve_config", "train", "changed_settings", "add_arguments",
           "run"]

CONFIG_DIR = Path(__file__).parent / "configs"
# The published code's spectral complexity for a plain feedforward net is its CNN formula.
PAPER_VARIANT = {"mlp": "cnn"}
HEARTBEAT_S = 60.0  # longest silence between two evaluations' lines


# ---------------------------------------------------------------------------- config

@dataclass
class TrainConfig:
    arch: str = "cnn"
    dataset: str = "digits"
    data_root: str | None = None
    download: bool = False
    train_size: int = 256                  # P
    seeds: tuple[int, ...] = (0,)          # one run per seed, trained together
    epochs: int = 100
    optimizer: str = "adam"                # adam | adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9                  # sgd only
    init_scale: float = 1.0                # multiplies every Conv/Linear weight at init
    batch_size: int = 128
    eval_batch_size: int = 1000
    n_evals: int = 50                      # about this many log-spaced evaluation epochs
    eval_every: int = 0                    # > 0: every this many epochs instead (and the last)
    model: dict = field(default_factory=dict)  # the architecture's options (models/*.py)
    data: dict = field(default_factory=dict)   # label_noise; the teacher's fields (data.py)
    norm_convention: str = "bft"           # or "paper" (scalingfit.norms)
    device: str = "auto"                   # auto: cuda if available, else cpu
    bf16: bool = True                      # bf16 autocast (CUDA only)
    channels_last: bool = True             # CUDA and a single seed only
    compile: bool = False                  # torch.compile the forward pass
    checkpoint_every_s: float = 120.0      # 0: after every epoch
    tensorboard: str | None = None         # a log directory; one subfolder per run
    wandb: str | None = None               # a W&B project; one W&B run per run
    out: str = "run.csv"


# Settings that do not change the numbers: a checkpoint made with other values resumes.
NOT_RESULTS = ("data_root", "download", "device", "checkpoint_every_s", "tensorboard", "wandb",
               "out", "compile")


def _bundled(dataset: str, arch: str) -> dict:
    """The dataset's bundled settings: its ``train:`` section, then its ``<arch>:`` section."""
    path = CONFIG_DIR / f"{dataset}.yaml"
    if not path.exists():
        return {}
    content = settings.read_yaml(path)
    return settings.merge(content.get("train", {}), content.get(arch, {}))


def resolve_config(*, config_file=None, flags: dict | None = None,
                   overrides: dict | None = None) -> TrainConfig:
    """Merge defaults, the bundled dataset file, ``config_file``, flags and overrides."""
    user = settings.read_yaml(config_file) if config_file else {}
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    top = settings.merge(user, flags, overrides or {})
    arch, dataset = top.get("arch", TrainConfig.arch), top.get("dataset", TrainConfig.dataset)
    if arch not in ARCHITECTURES:
        raise ScalingfitError(f"unknown architecture {arch!r}; choose {', '.join(ARCHITECTURES)}.")
    if dataset not in DATASETS:
        raise ScalingfitError(f"unknown dataset {dataset!r}; choose {', '.join(DATASETS)}.")
    merged = settings.merge(_bundled(dataset, arch), top)
    config = settings.from_dict(TrainConfig, merged, source=str(config_file or "settings"))
    if config.optimizer not in ("adam", "adamw", "sgd"):
        raise ScalingfitError(f"optimizer {config.optimizer!r}: choose adam, adamw or sgd.")
    if not config.seeds or len(set(config.seeds)) != len(config.seeds):
        raise ScalingfitError(f"seeds {config.seeds} must be distinct and at least one.")
    for key, low in (("train_size", 1), ("epochs", 0), ("batch_size", 1),
                     ("eval_batch_size", 1), ("n_evals", 1), ("eval_every", 0)):
        if getattr(config, key) < low:
            raise ScalingfitError(f"{key} = {getattr(config, key)}: it must be at least {low}.")
    if config.lr <= 0:
        raise ScalingfitError(f"lr = {config.lr}: the learning rate must be positive.")
    if config.norm_convention not in CONVENTIONS:
        raise ScalingfitError(f"norm_convention {config.norm_convention!r}: choose "
                              f"{' or '.join(CONVENTIONS)}.")
    if config.dataset not in OFFLINE and not config.data_root:
        raise ScalingfitError(f"{config.dataset} needs a data folder: --data-root DIR (in a "
                              "sweep file: settings: {data_root: DIR}).")
    check_options(config.dataset, config.data)
    return config


def run_id(config: TrainConfig, seed: int) -> str:
    return f"{config.arch}_{config.dataset}_P{config.train_size}_seed{seed}"


def paths(config: TrainConfig):
    """(table, resolved settings, checkpoint) paths of a run."""
    out = Path(config.out)
    stem = out.name[: -len(out.suffix)] if out.suffix else out.name
    return out, out.with_name(f"{stem}.config.yaml"), out.with_name(f"{stem}.ckpt")


# ----------------------------------------------------------------------------- train

def train(config: TrainConfig, *, log=print):
    """Train ``config``'s runs (one per seed); write and return the canonical table."""
    torch = require("torch", "torch")
    import pandas as pd

    from scalingfit.atomic import atomic_path
    from scalingfit.ingest.table import validate, write_table
    from scalingfit.norms import log_norms, log_spaced_steps

    from .models import build
    from .stack import ModelStack

    out_path, config_path, checkpoint_path = paths(config)
    device = resolve_device(config.device)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: pick the fastest algorithms
    seeds = list(config.seeds)
    M, P = len(seeds), config.train_size
    ids = [run_id(config, s) for s in seeds]

    log(f"training {', '.join(ids)} on {device}: {config.epochs} epochs")
    # ---- data: every run's P examples, resident on the device as uint8 -----------------
    data = load(config.dataset, config.data_root, download=config.download, options=config.data)
    subsets = [draw_train_subset(len(data.train_y), P, seed) for seed in seeds]
    train_x = torch.as_tensor(np.stack([data.train_x[i] for i in subsets]), device=device)
    train_y = torch.as_tensor(np.stack([data.train_y[i] for i in subsets]), device=device)
    test_x = torch.as_tensor(data.test_x, device=device)
    test_y = torch.as_tensor(data.test_y, device=device)
    mean = torch.tensor(data.mean, device=device).view(-1, 1, 1)
    std = torch.tensor(data.std, device=device).view(-1, 1, 1)

    def normalise(x):
        return (x.float() / data.scale - mean) / std

    # ---- model: one per seed, initialised from that seed, stacked -------------------
    channels, size = data.shape[0], data.shape[1]
    models = []
    for seed in seeds:
        torch.manual_seed(seed)
        models.append(build(config.arch, config.model, in_channels=channels, image_size=size,
                            num_classes=data.num_classes, init_scale=config.init_scale
                            ).to(device))
    stack = ModelStack(models, channels_last=config.channels_last and cuda,
                       compile=config.compile)

    # ---- optimiser: elementwise, so one over the stack is one per run ---------------
    params = stack.parameters()
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                                    weight_decay=config.weight_decay)
    else:
        kind = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
        optimizer = kind(params, lr=config.lr, weight_decay=config.weight_decay)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.bf16 and cuda)

    # ---- state that a checkpoint carries; resume if one is there --------------------
    shuffles = [torch.Generator(device=device).manual_seed(seed) for seed in seeds]
    norm_states = [{} for _ in seeds]
    rows, start_epoch, train_s, norm_s = [], 0, 0.0, 0.0
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location=device, weights_only=True)
        _check_same_run(saved["config"], config, checkpoint_path)
        stack.load_state_dict(saved["stack"])
        optimizer.load_state_dict(saved["optimizer"])
        for g, s in zip(shuffles, saved["shuffles"], strict=True):
            g.set_state(s.cpu())
        torch.set_rng_state(saved["rng"].cpu())
        if cuda and saved.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(saved["cuda_rng"].cpu(), device)
        norm_states = saved["norm_states"]
        rows, start_epoch = saved["rows"], saved["epoch"] + 1
        train_s, norm_s = saved["train_s"], saved["norm_s"]
        log(f"resuming {', '.join(ids)} from {checkpoint_path} after epoch {saved['epoch']} "
            f"({len(rows)} rows)")
    else:
        torch.manual_seed(seeds[0])  # dropout draws

    def save_checkpoint(epoch):
        state = {"config": dataclasses.asdict(config), "epoch": epoch,
                 "stack": stack.state_dict(), "optimizer": optimizer.state_dict(),
                 "shuffles": [g.get_state() for g in shuffles], "rng": torch.get_rng_state(),
                 "cuda_rng": torch.cuda.get_rng_state(device) if cuda else None,
                 "norm_states": norm_states, "rows": rows, "train_s": train_s,
                 "norm_s": norm_s}
        with atomic_path(checkpoint_path) as tmp:
            torch.save(state, tmp)

    sinks = _open_sinks(config, ids)
    members = torch.arange(M, device=device)[:, None]

    F = torch.nn.functional

    @torch.no_grad()
    def evaluate(x_all, y_all, shared_input):
        """(error, mean loss) per member over a whole split, in chunks."""
        stack.eval()
        n = y_all.shape[-1]
        wrong = torch.zeros(M, device=device, dtype=torch.int64)
        loss = torch.zeros(M, device=device, dtype=torch.float64)
        for i in range(0, n, config.eval_batch_size):
            x = normalise(x_all[..., i:i + config.eval_batch_size, :, :, :])
            y = y_all[..., i:i + config.eval_batch_size]
            y = y.expand(M, -1) if shared_input else y
            with autocast:
                logits = stack.logits(x, shared_input=shared_input).float()
            wrong += (logits.argmax(-1) != y).sum(-1)
            loss += F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none"
                                    ).view(y.shape).sum(-1).double()
        stack.train()
        return [w / n for w in wrong.tolist()], (loss / n).tolist()

    # ---- loop ---------------------------------------------------------------------
    eval_epochs = set(log_spaced_steps(config.epochs, config.n_evals) if not config.eval_every
                      else [*range(0, config.epochs + 1, config.eval_every), config.epochs])
    last_checkpoint = last_line = time.perf_counter()
    stack.train()
    for epoch in range(start_epoch, config.epochs + 1):
        if epoch > 0:
            tick = time.perf_counter()
            order = torch.stack([torch.randperm(P, generator=g, device=device)
                                 for g in shuffles])
            for i in range(0, P, config.batch_size):
                batch = order[:, i:i + config.batch_size]
                with autocast:
                    loss = stack.loss(normalise(train_x[members, batch]),
                                      train_y[members, batch]).sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if cuda:
                torch.cuda.synchronize(device)
            train_s += time.perf_counter() - tick
            if (epoch not in eval_epochs
                    and time.perf_counter() - last_line >= HEARTBEAT_S):
                log(f"epoch {epoch:>4}/{config.epochs} {', '.join(ids)}: training, "
                    f"{M * P * epoch / max(train_s, 1e-9):,.0f} images/s")
                last_line = time.perf_counter()
        if epoch in eval_epochs:
            test_error, test_loss = evaluate(test_x, test_y, True)
            train_error, train_loss = evaluate(train_x, train_y, False)
            tick = time.perf_counter()
            norms = [log_norms(stack.member(m), convention=config.norm_convention,
                               architecture=PAPER_VARIANT.get(config.arch, config.arch),
                               state=norm_states[m])
                     for m in range(M)]
            norm_s += time.perf_counter() - tick
            for m, seed in enumerate(seeds):
                if not math.isfinite(train_loss[m]):
                    raise ScalingfitError(
                        f"run {ids[m]} diverged by epoch {epoch} (training loss "
                        f"{train_loss[m]}); lower the learning rate (--lr).")
                row = {"run_id": ids[m], "architecture": config.arch,
                       "dataset": config.dataset, "train_size": P, "seed": seed,
                       "step": epoch, "test_error": test_error[m],
                       "train_error": train_error[m], "test_loss": test_loss[m],
                       "train_loss": train_loss[m], "n_test": int(test_y.numel()),
                       **{f"lognorm_{k}": v for k, v in norms[m].items()},
                       "optimizer": config.optimizer, "lr": config.lr,
                       "weight_decay": config.weight_decay, "init_scale": config.init_scale,
                       "batch_size": config.batch_size, "epochs": config.epochs,
                       "train_seconds": round(train_s, 3)}
                rows.append(row)
                sinks[m].log(epoch, {k: v for k, v in row.items()
                                     if k in _LOGGED or k.startswith("lognorm_")})
                log(f"epoch {epoch:>4}/{config.epochs} {ids[m]}: test error "
                    f"{test_error[m]:.4f}, train error {train_error[m]:.4f}, log R "
                    f"{norms[m]['spectral_complexity']:.2f}")
            last_line = time.perf_counter()
        # The rows so far travel in the checkpoint, so a resumed run recomputes (identically)
        # whatever followed it and the table gets every step once, however rare the saves.
        if time.perf_counter() - last_checkpoint >= config.checkpoint_every_s:
            save_checkpoint(epoch)
            last_checkpoint = time.perf_counter()
    for sink in sinks:
        sink.close()
        if sink.wandb is not None:  # the W&B runs were opened here: finish them here
            sink.wandb.finish()

    # ---- the canonical table, written atomically; then the checkpoint goes ----------
    table = validate(pd.DataFrame(rows).set_index(pd.RangeIndex(2, len(rows) + 2)),
                     source=str(out_path))
    write_table(table, out_path)
    settings.write_yaml(config_path, dataclasses.asdict(config))
    checkpoint_path.unlink(missing_ok=True)
    share = norm_s / train_s if train_s > 0 else float("nan")
    log(f"wrote {out_path} ({len(table)} rows); training {train_s:.1f} s, norms {norm_s:.2f} s "
        f"({100 * share:.1f}% of training)")
    return table


_LOGGED = ("test_error", "train_error", "test_loss", "train_loss")


def changed_settings(saved: dict, config: TrainConfig) -> str:
    """The settings that change the numbers and differ from ``saved``, as ``"key: old ->
    new, ..."`` (empty when there are none)."""
    current = dataclasses.asdict(config)
    return ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in current
                     if k not in NOT_RESULTS and _plain(saved.get(k)) != _plain(current[k]))


def _check_same_run(saved: dict, config: TrainConfig, path):
    if detail := changed_settings(saved, config):
        raise ScalingfitError(f"{path} is a checkpoint of different settings ({detail}). "
                              "Fix: restore those settings to resume, or delete the "
                              "checkpoint to start over.")


def _plain(value):
    """Tuples and lists compare equal (a checkpoint stores what YAML and torch give back)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _open_sinks(config: TrainConfig, ids):
    """A TensorBoard and/or W&B writer per run (plain no-ops when neither is asked for)."""
    from scalingfit.norms import MetricWriter

    sinks = []
    for run in ids:
        tensorboard = str(Path(config.tensorboard) / run) if config.tensorboard else None
        wandb_run = None
        if config.wandb:
            wandb = require("wandb", "wandb")
            try:
                wandb_run = wandb.init(project=config.wandb, name=run, id=run, resume="allow",
                                       config=dataclasses.asdict(config), reinit="create_new")
            except wandb.errors.Error as err:
                raise ScalingfitError(f"W&B could not start run {run}: {err} Fix: `wandb "
                                      "login`, or log locally with WANDB_MODE=offline.") from err
        sinks.append(MetricWriter(tensorboard=tensorboard, wandb=wandb_run))
    return sinks


# ------------------------------------------------------------------------------- CLI

ACCEPTS_OVERRIDES = True  # ``python -m reference_runs`` passes --key=value tokens through


def add_arguments(parser):
    parser.add_argument("--config", metavar="FILE", help="settings file (YAML)")
    parser.add_argument("--arch", choices=list(ARCHITECTURES))
    parser.add_argument("--dataset", choices=list(DATASETS))
    parser.add_argument("--data-root", metavar="DIR", help="folder holding the dataset files")
    parser.add_argument("--download", action="store_true", default=None,
                        help="fetch the dataset into --data-root first (needs internet)")
    parser.add_argument("--train-size", type=int, metavar="P", help="training examples")
    parser.add_argument("--seed", type=int, help="random seed (data subset, init, order)")
    parser.add_argument("--seeds", type=int, nargs="+", metavar="S",
                        help="several seed values (not a count: --seeds 0 1 2 3), trained "
                             "together on one device")
    parser.add_argument("--epochs", type=int, metavar="T")
    parser.add_argument("--optimizer", choices=["adam", "adamw", "sgd"])
    parser.add_argument("--lr", type=float)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--init-scale", type=float, help="multiplies Conv/Linear weights at init")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--eval-every", type=int, metavar="K",
                        help="evaluate every K epochs, evenly spaced (default: about n_evals "
                             "log-spaced epochs)")
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: auto)")
    parser.add_argument("--tensorboard", metavar="DIR", help="also log to TensorBoard here")
    parser.add_argument("--wandb", metavar="PROJECT", help="also log to this W&B project")
    parser.add_argument("--out", metavar="FILE", help="the table (CSV or Parquet)")
    parser.epilog = ("Any other setting: --key=value, e.g. --n_evals=20 --model.dim=128 "
                     "--data.label_noise=0.3.")


def run(args):
    flags = {k: getattr(args, k) for k in (
        "arch", "dataset", "data_root", "download", "train_size", "epochs", "optimizer", "lr",
        "weight_decay", "init_scale", "batch_size", "eval_every", "device", "tensorboard", "wandb",
        "out")}
    if args.seed is not None and args.seeds is not None:
        raise ScalingfitError("give --seed or --seeds, not both.")
    if args.seed is not None or args.seeds is not None:
        flags["seeds"] = [args.seed] if args.seed is not None else args.seeds
    config = resolve_config(config_file=args.config, flags=flags,
                            overrides=settings.parse_overrides(getattr(args, "overrides", [])))
    train(config)
    return 0
