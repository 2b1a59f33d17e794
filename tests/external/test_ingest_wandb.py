"""W&B run logs written by the real wandb client, offline: read, checksums, damage."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import textwrap
import zlib
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalingfit.errors import DataError
from scalingfit.ingest import load, wandb
from scalingfit.ingest._leveldb_log import BAD_CHECKSUM, DAMAGED, TRUNCATED, read_records

pytest.importorskip("wandb")

STEPS = 400  # enough history to fill several 32 KiB blocks
MARK_STEP = 123  # its test error is a number found nowhere else in the file
MARK = 0.314159265358979


def write_offline_runs(root, runs):
    """Run the wandb client offline in a subprocess; ``runs`` = [(name, config, rows)]."""
    script = textwrap.dedent(f"""
        import json, wandb
        for name, config, rows in json.loads({json.dumps(json.dumps(runs))}):
            run = wandb.init(project="p", name=name, config=config)
            for step, row in rows:
                run.log(row, step=step)
            run.finish()
    """)
    env = dict(os.environ, WANDB_MODE="offline", WANDB_DIR=str(root), WANDB_SILENT="true",
               WANDB_DISABLE_GIT="true", WANDB_DISABLE_CODE="true")
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=300)
    return sorted((root / "wandb").glob("offline-run-*/run-*.wandb"))


def rows(seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for step in range(STEPS):
        error = MARK if step == MARK_STEP else float(rng.uniform(0.1, 0.9))
        out.append((step, {"test/error": error, "norm/l1": float(step + 1),
                           "opt": {"lr": 0.1}, "note": "text"}))
    return out


@pytest.fixture(scope="module")
def offline_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wandb")
    config = {"architecture": "cnn", "dataset": "cifar10", "P": 500, "seed": 4,
              "long": "x" * 70_000}  # the run record spans three blocks
    (path,) = write_offline_runs(root, [("cnn_cifar10_P500_seed4", config, rows())])
    return path


def fragments(path):
    """(offset, length, type) of every record fragment, walking the documented format."""
    blob, out, pos = path.read_bytes(), [], 7
    while pos + 7 <= len(blob):
        left = 32768 - pos % 32768
        if left < 7:
            pos += left
            continue
        checksum, length, kind = struct.unpack_from("<IHB", blob, pos)
        if kind == 0:
            pos += left
            continue
        out.append((pos, length, kind))
        pos += 7 + length
    return out


def test_the_client_writes_the_format_this_reader_expects(offline_run):
    blob = offline_run.read_bytes()
    assert blob[:4] == b":W&B" and struct.unpack_from("<H", blob, 4)[0] == 0xBEE1
    kinds = Counter(kind for _, _, kind in fragments(offline_run))
    assert kinds[2] >= 1 and kinds[3] >= 1 and kinds[4] >= 1  # FIRST, MIDDLE, LAST
    for pos, length, kind in fragments(offline_run):  # plain zlib CRC-32 of type + data
        checksum = struct.unpack_from("<I", blob, pos)[0]
        assert zlib.crc32(blob[pos + 7:pos + 7 + length], zlib.crc32(bytes([kind]))) == checksum


def test_history_and_config_are_read(offline_run):
    table, (report,) = load(offline_run.parent, return_report=True)
    assert table["run_id"].unique().tolist() == ["cnn_cifar10_P500_seed4"]
    assert table["step"].tolist() == list(range(STEPS))
    expected = [row["test/error"] for _, row in rows()]
    assert table["test_error"].tolist() == expected
    assert table["norm_l1"].tolist() == [float(s + 1) for s in range(STEPS)]
    assert table["opt.lr"].eq(0.1).all()  # nested keys are joined with dots, as in the UI
    first = table.iloc[0]
    assert (first["architecture"], first["dataset"], first["train_size"], first["seed"]) == (
        "cnn", "cifar10", 500, 4)
    assert "'note'" in report.line()  # a string is not a number: noted, not read
    assert report.rows_skipped == 0


def history_record_of_mark(path):
    """Offset of the history record holding MARK (summary records hold it too)."""
    from wandb.proto.wandb_internal_pb2 import Record

    blob = path.read_bytes()
    for pos, length, kind in fragments(path):
        data = blob[pos + 7:pos + 7 + length]
        if kind == 1 and json.dumps(MARK).encode() in data and Record.FromString(
                data).WhichOneof("record_type") == "history":
            return pos + 7 + data.index(json.dumps(MARK).encode())
    raise AssertionError("no history record holds the mark")


def test_a_flipped_byte_in_a_history_record_loses_that_row_only(offline_run, tmp_path):
    blob = bytearray(offline_run.read_bytes())
    at = history_record_of_mark(offline_run)
    blob[at + 3] ^= 0x08
    damaged = tmp_path / "run-x.wandb"
    damaged.write_bytes(bytes(blob))
    table, (report,) = load(damaged, return_report=True)
    assert table["step"].tolist() == [s for s in range(STEPS) if s != MARK_STEP]
    assert report.skipped == Counter({BAD_CHECKSUM: 1})
    assert "W&B records failed their checksum" in report.line()


def test_a_flipped_byte_in_a_fragmented_record_loses_that_record_once(offline_run, tmp_path):
    blob = bytearray(offline_run.read_bytes())
    first = next(pos for pos, _, kind in fragments(offline_run) if kind == 2)
    blob[first + 7 + 100] ^= 0x01  # in the FIRST fragment of the run record
    damaged = tmp_path / "run-x.wandb"
    damaged.write_bytes(bytes(blob))
    skipped = Counter()
    assert sum(1 for _ in read_records(damaged, skipped)) == sum(
        1 for _ in read_records(offline_run, Counter())) - 1
    assert skipped == Counter({BAD_CHECKSUM: 1})
    # the run record (name, config) is gone; the history is all there
    table, report = wandb.read(damaged, None)
    assert len(table) == STEPS and "architecture" not in table


def test_a_damaged_record_header_resynchronises(offline_run, tmp_path):
    blob = bytearray(offline_run.read_bytes())
    pos, length, kind = [f for f in fragments(offline_run) if f[2] == 1][40]
    blob[pos + 5] ^= 0x7F  # the length's high byte: the record now runs past its block
    damaged = tmp_path / "run-x.wandb"
    damaged.write_bytes(bytes(blob))
    skipped = Counter()
    got = list(read_records(damaged, skipped))
    assert len(got) == sum(1 for _ in read_records(offline_run, Counter())) - 1
    assert skipped == Counter({DAMAGED: 1})


def test_a_truncated_run_log_keeps_every_whole_record(offline_run, tmp_path):
    blob = offline_run.read_bytes()
    cut = fragments(offline_run)[-5][0] + 9
    damaged = tmp_path / "run-x.wandb"
    damaged.write_bytes(blob[:cut])
    skipped = Counter()
    assert len(list(read_records(damaged, skipped))) == len(
        [f for f in fragments(offline_run)[:-5] if f[2] in (1, 4)])
    assert skipped == Counter({TRUNCATED: 1})


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_never_raises_and_spares_untouched_records(offline_run, tmp_path, data):
    pristine = offline_run.read_bytes()
    blob = bytearray(pristine)
    flips = data.draw(st.lists(st.integers(7, len(blob) - 1), min_size=1, max_size=4))
    for at in flips:
        blob[at] ^= data.draw(st.integers(1, 255))
    damaged = tmp_path / "run-x.wandb"
    damaged.write_bytes(bytes(blob))
    got = set(read_records(damaged, Counter()))
    # whole records (FULL fragments) that no flip touched are all read
    for pos, length, kind in fragments(offline_run):
        if kind == 1 and not any(pos <= at < pos + 7 + length for at in flips):
            assert pristine[pos + 7:pos + 7 + length] in got


def test_not_a_run_log_is_a_one_line_error(tmp_path):
    path = tmp_path / "run-abc.wandb"
    path.write_bytes(b"PK\x03\x04 not a run log at all")
    with pytest.raises(DataError, match="not a W&B run log"):
        load(path)


def test_two_runs_with_one_name_are_an_error(tmp_path):
    write_offline_runs(tmp_path, [
        ("same", {}, [(0, {"test/error": 0.5, "norm/l1": 1.0})]),
        ("same", {}, [(0, {"test/error": 0.4, "norm/l1": 1.0})])])
    with pytest.raises(DataError, match="two W&B runs are named 'same'"):
        wandb.read(tmp_path, None)


def test_a_logged_nan_is_a_value_not_a_gap(tmp_path):
    write_offline_runs(tmp_path, [("cnn_P10_seed0", {}, [
        (0, {"test/error": 0.5, "norm/l1": 1.0}),
        (1, {"test/error": float("nan"), "norm/l1": 2.0}),
        (2, {"norm/l1": 3.0})])])  # test error not logged at all at step 2
    template = {"runs": {"template": "cnn_P{train_size}_seed{seed}"}}
    with pytest.raises(DataError, match="test_error.*missing"):
        load(tmp_path, template)
    table, (report,) = load(tmp_path, template, nan_policy="omit", return_report=True)
    assert table["step"].tolist() == [0]
    assert report.skipped == Counter({"steps without 'test/error' logged": 1,
                                      "NaN or inf test_error or norm (--nan-policy omit)": 1})


def test_missing_train_size_with_a_mapping_points_to_its_template_or_set(tmp_path):
    write_offline_runs(tmp_path, [("cnn_mnist_P100_seed0", {}, [
        (0, {"test/error": 0.5, "norm/l1": 1.0}), (1, {"test/error": 0.4, "norm/l1": 2.0})])])
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("set: {n_test: 10000}\n")
    with pytest.raises(DataError) as caught:
        load(tmp_path, mapping)
    fix = caught.value.fix
    assert caught.value.column == "train_size" and "rename the columns" not in fix
    assert f"your mapping ({mapping})" in fix and "--map mapping.yaml" not in fix
    template = fix.split('template: "')[1].split('"')[0]
    assert template == "{architecture}_{dataset}_P{train_size}_seed{seed}"
    table = load(tmp_path, {"runs": {"template": template}})
    assert table["train_size"].tolist() == [100, 100]
