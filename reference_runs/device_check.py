"""Device check: the fast training path against a plain DataLoader loop, norm overhead, a run.

    python -m reference_runs.device_check --out "$OUT"          # on a GPU, about 3–5 minutes
    python -m reference_runs.device_check --out /tmp/dc --tiny  # on a CPU, seconds

For each architecture (the CIFAR-10 configurations of ``configs/cifar10.yaml``) on
synthetic CIFAR-10-shaped data (32×32 RGB uint8, 10 classes), it measures training
throughput in images/s, side by side in one process:

- ``plain``: the usual loop — a ``DataLoader`` with worker processes turning uint8 images
  into normalised float tensors one by one, a copy to the device per batch, fp32.
- ``fast``: the path of ``train.py`` — the data resident on the device, batches drawn by
  index, bf16 autocast and channels-last on CUDA, one model (``fast_1``) and a vmapped
  stack of ``--stack`` models (``fast_stack``; images of all members counted).

and the norm overhead: the time of :func:`scalingfit.norms.log_norms` (cold, then
warm-started) against the time of one training epoch of 50,000 images on the fast path.
Then it runs one short real training (``digits``, several seeds stacked) through
``train.py`` and checks its table. Everything is written to ``OUT/device_check.json`` and
``OUT/throughput.csv``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from scalingfit.norms import log_norms

from .models import build
from .train import _bundled, resolve_config, train

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
EPOCH_IMAGES = 50_000  # a CIFAR-10 training epoch


class _SyntheticImages(torch.utils.data.Dataset):
    """uint8 HWC images converted per item, as torchvision's ToTensor + Normalize would."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels
        self.mean = torch.tensor(CIFAR_MEAN).view(3, 1, 1)
        self.std = torch.tensor(CIFAR_STD).view(3, 1, 1)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        x = torch.from_numpy(self.images[i]).permute(2, 0, 1).float().div(255)
        return (x - self.mean) / self.std, int(self.labels[i])


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _forever(loader):
    while True:
        yield from loader


def _images_per_second(step, device, *, warmup, seconds):
    """images/s of ``step()`` (one training step, returning its images), timed for about
    ``seconds`` after ``warmup`` untimed steps. The clock is read every 10 steps, and the
    device synchronised only at both ends, so the timing does not stall the queue."""
    for _ in range(warmup):
        step()
    _sync(device)
    seen, steps, start = 0, 0, time.perf_counter()
    while True:
        seen += step()
        steps += 1
        if steps % 10 == 0 and time.perf_counter() - start >= seconds:
            _sync(device)
            return seen / (time.perf_counter() - start)


def _model(arch, options, device, seed=0):
    torch.manual_seed(seed)
    return build(arch, options, in_channels=3, image_size=32, num_classes=10).to(device)


def plain_throughput(arch, options, images, labels, device, *, batch, workers, seconds,
                     warmup):
    """images/s of a DataLoader + fp32 loop (after ``warmup`` steps)."""
    model = _model(arch, options, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = torch.utils.data.DataLoader(
        _SyntheticImages(images, labels), batch_size=batch, shuffle=True, drop_last=True,
        num_workers=workers, pin_memory=device.type == "cuda",
        persistent_workers=workers > 0)
    batches = _forever(loader)

    def step():
        x, y = next(batches)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return len(y)

    return _images_per_second(step, device, warmup=warmup, seconds=seconds)


def fast_throughput(arch, options, images, labels, device, *, batch, members, seconds,
                    warmup, compile=False):
    """images/s (all members) of the resident-data, bf16, stacked path of train.py."""
    from .stack import ModelStack

    cuda = device.type == "cuda"
    models = [_model(arch, options, device, seed) for seed in range(members)]
    stack = ModelStack(models, channels_last=cuda, compile=compile)
    optimizer = torch.optim.Adam(stack.parameters(), lr=1e-3,
                                 fused=True if cuda else None)
    x_all = torch.as_tensor(images, device=device).permute(0, 3, 1, 2).contiguous()
    y_all = torch.as_tensor(labels, device=device)
    mean = torch.tensor(CIFAR_MEAN, device=device).view(3, 1, 1)
    std = torch.tensor(CIFAR_STD, device=device).view(3, 1, 1)
    n = len(y_all)
    generator = torch.Generator(device=device).manual_seed(0)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda)
    stack.train()

    def step():
        idx = torch.randint(n, (members, batch), device=device, generator=generator)
        with autocast:
            x = (x_all[idx].float() / 255 - mean) / std
            loss = stack.loss(x, y_all[idx]).sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return members * batch

    return _images_per_second(step, device, warmup=warmup, seconds=seconds)


def norm_timing(arch, options, device, repeats=5):
    """Seconds per log_norms call: cold (first) and warm (median of ``repeats``)."""
    model = _model(arch, options, device)
    state = {}
    _sync(device)
    tick = time.perf_counter()
    log_norms(model, state=state)
    _sync(device)
    cold = time.perf_counter() - tick
    warm = []
    for _ in range(repeats):
        with torch.no_grad():  # a small step, as between two evaluations
            for p in model.parameters():
                p.mul_(1.001)
        _sync(device)
        tick = time.perf_counter()
        log_norms(model, state=state)
        _sync(device)
        warm.append(time.perf_counter() - tick)
    return cold, float(np.median(warm))


def real_run(out, device, *, tiny):
    """A short real training through train.py on digits (offline), several seeds stacked."""
    config = resolve_config(overrides={
        "arch": "cnn", "dataset": "digits", "train_size": 256 if tiny else 1024,
        "seeds": [0, 1] if tiny else [0, 1, 2, 3], "epochs": 3 if tiny else 30,
        "n_evals": 3 if tiny else 15, "device": str(device), "out": str(out / "digits_run.csv")})
    tick = time.perf_counter()
    table = train(config, log=lambda line: print(f"  {line}", flush=True))
    last = table.sort_values("step").groupby("run_id").tail(1)
    return {"seconds": time.perf_counter() - tick, "rows": len(table),
            "runs": int(table["run_id"].nunique()),
            "final_test_error": last["test_error"].round(4).tolist(),
            "table": str(out / "digits_run.csv")}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT", "device_check_out"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--archs", nargs="+", default=["cnn", "resnet", "vit"])
    parser.add_argument("--tiny", action="store_true",
                        help="tiny models and windows, for a CPU smoke test")
    parser.add_argument("--seconds", type=float, help="measuring window per figure")
    parser.add_argument("--stack", type=int, help="models in the vmapped stack")
    parser.add_argument("--workers", type=int, default=4, help="DataLoader workers (plain)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    args = parser.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    tiny = args.tiny
    seconds = args.seconds or (0.5 if tiny else 8.0)
    stack = args.stack or (2 if tiny else 8)
    n_images = 512 if tiny else 20_000
    batch = 32 if tiny else 128
    warmup = 2 if tiny else 20
    workers = 0 if tiny else args.workers
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n_images, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n_images)

    report = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
              "device": torch.cuda.get_device_name(device) if device.type == "cuda"
              else platform.processor() or "cpu",
              "torch": torch.__version__, "python": sys.version.split()[0], "tiny": tiny,
              "batch": batch, "stack": stack, "seconds_per_figure": seconds,
              "plain_workers": workers, "architectures": {}}
    rows = []

    def save():  # after every step, so a timeout or a crash keeps what was measured
        (out / "device_check.json").write_text(json.dumps(report, indent=2))
        (out / "throughput.csv").write_text("architecture,path,images_per_s\n"
                                            + "".join(f"{r}\n" for r in rows))

    for arch in args.archs:
        options = _bundled("cifar10", arch).get("model", {})
        if tiny:  # the digits-sized models, on 32×32 inputs
            options = {**_bundled("digits", arch).get("model", {})}
            if arch == "vit":
                options["patch_size"] = 8
        print(f"{arch}: measuring", flush=True)
        try:
            entry = measure(arch, options, images, labels, device, batch=batch, stack=stack,
                            seconds=seconds, warmup=warmup, workers=workers,
                            compile=args.compile)
        except Exception as err:  # one failure must not cost the other figures
            entry = {"error": f"{type(err).__name__}: {err}"}
        report["architectures"][arch] = entry
        for path, value in entry.get("images_per_s", {}).items():
            rows.append(f"{arch},{path},{value:.1f}")
        print(f"{arch}: {json.dumps(entry)}", flush=True)
        save()

    print("real run: cnn on digits", flush=True)
    try:
        report["real_run"] = real_run(out, device, tiny=tiny)
    except Exception as err:
        report["real_run"] = {"error": f"{type(err).__name__}: {err}"}
    save()
    print(json.dumps(report, indent=2))
    failed = [k for k, v in report["architectures"].items() if "error" in v]
    return 1 if failed or "error" in report["real_run"] else 0


def measure(arch, options, images, labels, device, *, batch, stack, seconds, warmup, workers,
            compile):
    """One architecture's figures: throughput of each path, and the norm overhead."""
    cudnn = torch.backends.cudnn
    cudnn.benchmark = False  # the plain loop as usually written
    figures = {"plain": plain_throughput(arch, options, images, labels, device, batch=batch,
                                         workers=workers, seconds=seconds, warmup=warmup)}
    cudnn.benchmark = True   # the fast path picks the fastest convolution algorithms
    for name, members, compiled in (("fast_1", 1, False), ("fast_stack", stack, False),
                                    ("fast_1_compiled", 1, True)):
        if compiled and not compile:
            continue
        figures[name] = fast_throughput(arch, options, images, labels, device, batch=batch,
                                        members=members, seconds=seconds,
                                        warmup=warmup + (3 if compiled else 0),
                                        compile=compiled)
    cudnn.benchmark = False
    cold, warm = norm_timing(arch, options, device)
    epoch_s = EPOCH_IMAGES / figures["fast_1"]
    return {"images_per_s": {k: round(v, 1) for k, v in figures.items()},
            "speedup_fast_1": round(figures["fast_1"] / figures["plain"], 2),
            "speedup_fast_stack": round(figures["fast_stack"] / figures["plain"], 2),
            "norm_cold_s": round(cold, 4), "norm_warm_s": round(warm, 4),
            "epoch_s_fast_1": round(epoch_s, 3),
            "norm_overhead_of_epoch": float(f"{warm / epoch_s:.3g}")}


if __name__ == "__main__":
    sys.exit(main())
