"""Sweeps on digits: killed mid-run with SIGKILL and restarted; submitit; several devices."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from reference_runs.sweep import read_sweep, run_sweep  # noqa: E402
from reference_runs.train import resolve_config, train  # noqa: E402
from scalingfit.errors import DataError, ScalingfitError, ScalingfitWarning  # noqa: E402
from scalingfit.fitting.pipeline import fit  # noqa: E402
from scalingfit.ingest.table import validate  # noqa: E402
from scalingfit.norms import log_spaced_steps  # noqa: E402

torch.set_num_threads(1)  # as OMP_NUM_THREADS=1 in the sweep: the same sums, the same bits
REPO = Path(__file__).resolve().parents[2]
RESULTS = ["run_id", "step", "test_error", "train_error", "test_loss", "train_loss",
           "lognorm_spectral_complexity", "lognorm_spectral_product", "lognorm_frobenius",
           "lognorm_l1", "lognorm_group21"]


def write_sweep(tmp_path, **changes):
    sweep = {"out": "out",
             "grid": {"arch": ["cnn", "resnet"], "dataset": ["digits"],
                      "train_size": [16, 32, 64, 128], "seed": [0, 1]},
             "settings": {"epochs": 6, "batch_size": 16, "lr": 5e-3, "device": "cpu",
                          "checkpoint_every_s": 0},
             **changes}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep))
    return path


def environment():
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": "1"}


def sweep_command(path):
    return [sys.executable, "-m", "reference_runs", "sweep", str(path)]


@pytest.mark.slow
def test_a_killed_sweep_restarts_without_lost_or_duplicated_rows(tmp_path):
    path = write_sweep(tmp_path)
    runs = tmp_path / "out" / "runs"
    log = open(tmp_path / "first.log", "w")
    process = subprocess.Popen(sweep_command(path), stdout=log, stderr=subprocess.STDOUT,
                               env=environment())
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:
            finished = list(runs.glob("*.csv"))
            started = [c for c in runs.glob("*.ckpt") if not c.with_suffix(".csv").exists()]
            if len(finished) >= 3 and started:
                break
            time.sleep(0.01)
    finally:
        process.send_signal(signal.SIGKILL)  # no cleanup, no atexit: a real crash
        process.wait()
        log.close()
    finished = {c.stem for c in runs.glob("*.csv")}
    interrupted = [c.stem for c in runs.glob("*.ckpt") if c.stem not in finished]
    assert 3 <= len(finished) < 16 and len(interrupted) == 1, (finished, interrupted)
    finished_times = {s: (runs / f"{s}.csv").stat().st_mtime_ns for s in finished}

    restart = subprocess.run(sweep_command(path), capture_output=True, text=True,
                             env=environment(), timeout=300)
    assert restart.returncode == 0, restart.stderr[-2000:]
    assert f"16 jobs, {len(finished)} done" in restart.stdout
    assert "(1 resume from a checkpoint)" in restart.stdout
    assert f"resuming {interrupted[0]}" in restart.stdout

    table = pd.read_csv(tmp_path / "out" / "table.csv")
    table = validate(table, source="table.csv")  # would raise on a repeated (run, step)
    assert table["run_id"].nunique() == 16
    steps = log_spaced_steps(6)
    for run, rows in table.groupby("run_id"):
        assert rows["step"].tolist() == steps, run  # none lost, none twice
    for stem, mtime in finished_times.items():  # finished jobs were skipped, not redone
        assert (runs / f"{stem}.csv").stat().st_mtime_ns == mtime

    # The resumed run is the run that would have happened without the crash.
    saved = yaml.safe_load((runs / f"{interrupted[0]}.config.yaml").read_text())
    fresh = train(resolve_config(overrides={**saved, "out": str(tmp_path / "fresh.csv")}),
                  log=lambda line: None)
    resumed = table[table["run_id"].isin(fresh["run_id"])]
    pd.testing.assert_frame_equal(resumed[RESULTS].reset_index(drop=True),
                                  fresh[RESULTS].reset_index(drop=True), check_exact=True)

    # ... and the fitting core accepts the sweep's table as it is.
    with pytest.warns(ScalingfitWarning):  # most of these 6-epoch runs end before their optimum
        result = fit(table, draws=100, tune=100, chains=2, progress=False)
    assert [g["architecture"] for g in result.groups] == ["cnn", "resnet"]
    assert result.settings["norm"] == "spectral_complexity"


@pytest.mark.slow
def test_sweep_through_submitit_local_executor(tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    monkeypatch.setenv("PYTHONPATH", environment()["PYTHONPATH"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = write_sweep(tmp_path, executor="submitit-local", slurm={"timeout_min": 10},
                       grid={"arch": ["cnn"], "dataset": ["digits"], "train_size": [16],
                             "seed": [0, 1, 2]}, seeds_per_job=2)
    lines = []
    table = run_sweep(read_sweep(path), log=lines.append)
    assert sorted(table["seed"].unique()) == [0, 1, 2]
    assert sum(" done;" in line for line in lines) == 2
    assert any("cnn_digits_P16_seed2 done" in line for line in lines)
    assert (tmp_path / "out" / "runs" / "cnn_digits_P16_seeds0-1.csv").exists()
    assert list((tmp_path / "out" / "submitit").glob("*_result.pkl"))  # ran via submitit


@pytest.mark.slow
def test_sweep_over_two_local_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", environment()["PYTHONPATH"])
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    path = write_sweep(tmp_path, devices=["cpu", "cpu"],
                       grid={"arch": ["vit"], "dataset": ["digits"], "train_size": [16, 32],
                             "seed": [0]}, settings={"epochs": 1, "device": "cpu"})
    table = run_sweep(read_sweep(path), log=lambda line: None)
    assert sorted(table["train_size"].unique()) == [16, 32]
    assert validate(table, source="table").shape[0] == 2 * len(log_spaced_steps(1))


@pytest.mark.slow
def test_ctrl_c_stops_a_sweep_over_two_devices_at_once(tmp_path):
    path = write_sweep(tmp_path, devices=["cpu", "cpu"],
                       grid={"arch": ["cnn"], "dataset": ["digits"],
                             "train_size": [64, 128, 256], "seed": [0, 1]},
                       settings={"epochs": 200, "device": "cpu", "checkpoint_every_s": 0})
    log = tmp_path / "sweep.log"
    with open(log, "w") as out:  # its own process group, as a terminal's foreground job
        process = subprocess.Popen(sweep_command(path), stdout=out, stderr=subprocess.STDOUT,
                                   env=environment(), start_new_session=True)
    # both jobs training before Ctrl-C (slow to start on a loaded machine: give it time)
    deadline = time.monotonic() + 400
    while not (training := all(f"epoch    2/200 cnn_digits_P64_seed{s}" in log.read_text()
                               for s in (0, 1))) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not training:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"the two jobs did not start within 400 s:\n{log.read_text()[-2000:]}")
    os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C does
    start = time.monotonic()
    assert process.wait(timeout=60) == 130, log.read_text()[-3000:]
    assert time.monotonic() - start < 30
    # the two running jobs stopped (at their checkpoints); the four queued ones never started
    left = {p.name for p in (tmp_path / "out" / "runs").iterdir()}
    assert left and left <= {"cnn_digits_P64_seed0.ckpt", "cnn_digits_P64_seed1.ckpt"}, (
        left, log.read_text()[-2000:])


@pytest.mark.slow
def test_ctrl_c_that_reaches_only_the_workers_still_stops_the_sweep(tmp_path):
    """Where the sweep's own process misses the signal, its interrupted workers stop it."""
    path = write_sweep(tmp_path, devices=["cpu", "cpu"],
                       grid={"arch": ["cnn"], "dataset": ["digits"],
                             "train_size": [64, 128], "seed": [0, 1]},
                       settings={"epochs": 200, "device": "cpu", "checkpoint_every_s": 0})
    log = tmp_path / "sweep.log"
    with open(log, "w") as out:
        process = subprocess.Popen(sweep_command(path), stdout=out, stderr=subprocess.STDOUT,
                                   env=environment(), start_new_session=True)
    deadline = time.monotonic() + 400
    while not (training := all(f"epoch    2/200 cnn_digits_P64_seed{s}" in log.read_text()
                               for s in (0, 1))) and time.monotonic() < deadline:
        time.sleep(0.05)
    if not training:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"the two jobs did not start within 400 s:\n{log.read_text()[-2000:]}")
    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    for child in children:  # the two workers (and the device queue's server)
        os.kill(int(child), signal.SIGINT)
    assert process.wait(timeout=60) == 130, log.read_text()[-3000:]
    left = {p.name for p in (tmp_path / "out" / "runs").iterdir()}
    assert left <= {"cnn_digits_P64_seed0.ckpt", "cnn_digits_P64_seed1.ckpt"}, left


def test_sweep_files_are_checked(tmp_path):
    with pytest.raises(DataError, match="missing train_size, seed"):
        read_sweep(write_sweep(tmp_path, grid={"arch": ["cnn"], "dataset": ["digits"]}))
    with pytest.raises(DataError, match="'seed' belongs in the grid"):
        read_sweep(write_sweep(tmp_path, settings={"seed": 1}))
    with pytest.raises(DataError, match="unknown setting"):
        read_sweep(write_sweep(tmp_path, executr="local"))
    with pytest.raises(DataError, match="the grid repeats train_size 16; seed 0"):
        read_sweep(write_sweep(tmp_path, grid={"arch": ["cnn"], "dataset": ["digits"],
                                               "train_size": [16, 16], "seed": [0, 0]}))


def test_settings_errors_stop_the_sweep_before_any_job(tmp_path):
    for changes, message in (({"devices": ["gpu"]}, "device 'gpu' is not one torch knows"),
                             ({"settings": {"model": {"depth": 2}}},
                              "cnn model options: unknown setting\\(s\\) depth")):
        with pytest.raises(ScalingfitError, match=message):
            run_sweep(read_sweep(write_sweep(tmp_path, **changes)), log=lambda line: None)
        assert not (tmp_path / "out" / "runs").exists()


def test_a_failing_job_does_not_stop_the_others(tmp_path):
    # digits has 1,297 training images: the P = 5000 job fails when it loads its data
    path = write_sweep(tmp_path, grid={"arch": ["cnn"], "dataset": ["digits"],
                                       "train_size": [5000, 16], "seed": [0]},
                       settings={"epochs": 1, "device": "cpu"})
    lines = []
    with pytest.raises(ScalingfitError, match="1 job\\(s\\) did not finish: cnn_digits_P5000"):
        run_sweep(read_sweep(path), log=lines.append)
    assert any("cnn_digits_P5000_seed0 FAILED" in line and "between 1 and 1297" in line
               for line in lines)
    assert (tmp_path / "out" / "runs" / "cnn_digits_P16_seed0.csv").exists()


def test_a_finished_job_with_other_settings_is_not_reused(tmp_path):
    grid = {"arch": ["cnn"], "dataset": ["digits"], "train_size": [16], "seed": [0]}
    run_sweep(read_sweep(write_sweep(tmp_path, grid=grid)), log=lambda line: None)
    changed = write_sweep(tmp_path, grid=grid, settings={"epochs": 7, "batch_size": 16,
                                                         "lr": 5e-3, "device": "cpu"})
    with pytest.raises(ScalingfitError, match="cnn_digits_P16_seed0 \\(epochs: 6 -> 7\\)"):
        run_sweep(read_sweep(changed), log=lambda line: None)
    # settings that do not change the numbers (device, checkpoints) reuse the finished job
    same = write_sweep(tmp_path, grid=grid, settings={"epochs": 6, "batch_size": 16,
                                                      "lr": 5e-3, "device": "auto"})
    lines = []
    run_sweep(read_sweep(same), log=lines.append)
    assert "1 jobs, 1 done, 0 to run" in lines[0]
