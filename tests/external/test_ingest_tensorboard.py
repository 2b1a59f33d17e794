"""TensorBoard event files written by the real writers: read, checksums, damage, metadata."""

from __future__ import annotations

import struct
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalingfit.errors import DataError
from scalingfit.ingest import _tfevent, load, tensorboard
from scalingfit.ingest._tfevent import EventScalars
from scalingfit.ingest._tfrecord import BAD_DATA, DAMAGED, TRUNCATED, read_records
from scalingfit.ingest.mapping import Mapping

pytest.importorskip("tensorboard")
from tensorboard.compat.proto import (  # noqa: E402
    event_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
)
from tensorboard.plugins.hparams import summary_v2 as hparams_summary  # noqa: E402
from tensorboard.plugins.scalar import metadata as scalar_metadata  # noqa: E402
from tensorboard.summary.writer.event_file_writer import EventFileWriter  # noqa: E402

TEMPLATE = {"runs": {"template": "{architecture}_P{train_size}_seed{seed}"}}


# -- writers ---------------------------------------------------------------------------

def simple(tag, value):
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=value)])


def tf2_scalar(tag, value, *, dtype=1, layout="content", metadata=True, shape=True):
    """A tensor-encoded scalar, in TF2's layout by default (float32 tensor_content)."""
    fmt = "<f" if dtype == 1 else "<d"
    fields = {"dtype": dtype}
    if shape:
        fields["tensor_shape"] = tensor_shape_pb2.TensorShapeProto()
    if layout == "content":
        fields["tensor_content"] = struct.pack(fmt, value)
    elif dtype == 1:
        fields["float_val"] = [value]
    else:
        fields["double_val"] = [value]
    value_pb = summary_pb2.Summary.Value(tag=tag, tensor=tensor_pb2.TensorProto(**fields))
    if metadata:
        value_pb.metadata.CopyFrom(scalar_metadata.create_summary_metadata(None, None))
    return summary_pb2.Summary(value=[value_pb])


def write_events(directory, summaries_by_step):
    """An event file written by tensorboard's own EventFileWriter."""
    before = set(directory.iterdir()) if directory.exists() else set()
    writer = EventFileWriter(str(directory), filename_suffix=f".{len(before)}")
    for step, summary in summaries_by_step:
        writer.add_event(event_pb2.Event(wall_time=1.5, step=step, summary=summary))
    writer.close()
    (path,) = set(directory.iterdir()) - before
    return path


def pytorch_run(directory, steps=range(0, 50, 5), *, seed=0):
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    rng = np.random.default_rng(seed)
    errors = rng.uniform(0.05, 0.9, len(steps))
    norms = rng.uniform(1, 1e6, len(steps))
    with torch_tb.SummaryWriter(str(directory)) as writer:
        for step, error, norm in zip(steps, errors, norms, strict=True):
            writer.add_scalar("test/error", error, step)
            writer.add_scalar("norm/spectral_complexity", norm, step)
            writer.add_scalar("train/loss", 2 * error, step)
    return list(steps), errors, norms


def payloads_written(path):
    """The data of every record in a file, with its byte span, from the writer's framing."""
    blob, pos, out = path.read_bytes(), 0, []
    while pos < len(blob):
        (length,) = struct.unpack_from("<Q", blob, pos)
        out.append((pos, pos + 16 + length, blob[pos + 12:pos + 12 + length]))
        pos += 16 + length
    return out


def payloads_read(path, skipped, **kwargs):
    return [bytes(buffer[s:e]) for buffer, starts, ends in read_records(path, skipped, **kwargs)
            for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]


# -- reading ---------------------------------------------------------------------------

def test_pytorch_runs_read_with_template(tmp_path):
    expected = {}
    for size in (100, 200):
        expected[size] = pytorch_run(tmp_path / f"cnn_P{size}_seed0", seed=size)
    table = load(tmp_path, TEMPLATE)
    assert sorted(table["train_size"].unique()) == [100, 200]
    for size, (steps, errors, norms) in expected.items():
        run = table[table["train_size"] == size]
        assert run["step"].tolist() == steps
        np.testing.assert_array_equal(run["test_error"], errors.astype(np.float32))
        np.testing.assert_array_equal(run["norm_spectral_complexity"], norms.astype(np.float32))
        np.testing.assert_array_equal(run["train_loss"], (2 * errors).astype(np.float32))


def test_a_run_in_several_event_files_is_one_run(tmp_path):
    run = tmp_path / "cnn_P100_seed0"
    write_events(run, [(s, simple("test/error", 0.5)) for s in range(3)])
    write_events(run, [(s, simple("norm/l1", 2.0)) for s in range(3)])
    table, report = tensorboard.read(run, None)
    assert table["run_id"].unique().tolist() == ["cnn_P100_seed0"]
    assert table["step"].tolist() == [0, 1, 2] and table["norm_l1"].eq(2.0).all()


@pytest.mark.parametrize("dtype, layout", [(1, "content"), (2, "content"), (1, "values"),
                                           (2, "values")])
def test_tensor_encoded_scalars(tmp_path, dtype, layout):
    values = [0.1, 0.25, 1 / 3]
    write_events(tmp_path / "vit_P10_seed1", [
        (step, tf2_scalar("test/error", v, dtype=dtype, layout=layout))
        for step, v in enumerate(values)] + [
        (step, tf2_scalar("norm/fro", 10.0 + step, dtype=dtype, layout=layout, shape=False))
        for step in range(3)])
    table = load(tmp_path, TEMPLATE)
    precision = np.float32 if dtype == 1 else np.float64
    np.testing.assert_array_equal(table["test_error"], np.array(values, precision))
    assert table["norm_fro"].tolist() == [10.0, 11.0, 12.0]


def test_metadata_on_the_first_event_of_a_tag_holds_for_the_run(tmp_path):
    # TF1's FileWriter strips the metadata from every event of a tag but the first
    events = [(0, tf2_scalar("test/error", 0.5))]
    events += [(s, tf2_scalar("test/error", 0.5 / s, metadata=False)) for s in range(1, 4)]
    events += [(s, simple("norm/l1", float(s + 1))) for s in range(4)]
    write_events(tmp_path / "cnn_P1_seed0", events)
    table = load(tmp_path, TEMPLATE)
    assert table["test_error"].tolist() == pytest.approx([0.5, 0.5, 0.25, 0.5 / 3])


def test_other_summaries_are_noted_not_read(tmp_path):
    histogram = summary_pb2.Summary(value=[summary_pb2.Summary.Value(
        tag="weights", histo=summary_pb2.HistogramProto(min=0, max=1, num=3))])
    untagged = tf2_scalar("loose", 1.0, metadata=False)
    two_values = summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag="test/error", simple_value=0.5),
        summary_pb2.Summary.Value(tag="norm/l1", simple_value=3.0)])
    write_events(tmp_path / "cnn_P1_seed0",
                 [(0, histogram), (0, untagged), (0, two_values), (1, two_values)])
    table, report = tensorboard.read(tmp_path, None)
    assert table["norm_l1"].tolist() == [3.0, 3.0]
    assert "loose" not in table
    note = report.line()
    assert "histo summaries" in note and "without the 'scalars' plugin" in note


def test_pytorch_add_hparams_is_folded_into_its_run(tmp_path):
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with torch_tb.SummaryWriter(str(tmp_path / "my-run")) as writer:
        for step in range(3):
            writer.add_scalar("test/error", 0.5 - 0.1 * step, step)
            writer.add_scalar("norm/l1", 1.0 + step, step)
        writer.add_hparams({"arch": "resnet18", "dataset": "cifar10", "P": 5000, "seed": 3,
                            "lr": 0.1}, {"hparam/final_error": 0.3})
    table, report = tensorboard.read(tmp_path, None)
    assert table["run_id"].unique().tolist() == ["my-run"]
    row = table.iloc[0]
    assert (row["architecture"], row["dataset"], row["train_size"], row["seed"], row["lr"]) == (
        "resnet18", "cifar10", 5000, 3, 0.1)
    assert "add_hparams() output" in report.line()


def test_hparams_win_over_the_template_and_the_template_over_set(tmp_path):
    write_events(tmp_path / "cnn_P100_seed7", [
        (0, hparams_summary.hparams_pb({"seed": 1}, start_time_secs=1.0)),
        (0, simple("test/error", 0.5)), (0, simple("norm/l1", 1.0))])
    mapping = {**TEMPLATE, "set": {"seed": 99, "train_size": 5, "n_test": 10000}}
    table = load(tmp_path, mapping)
    assert table["seed"].tolist() == [1]  # hparams
    assert table["train_size"].tolist() == [100]  # template, not set
    assert table["n_test"].tolist() == [10000]  # set fills what nobody gave


def test_steps_lacking_a_needed_metric_are_counted(tmp_path):
    events = [(s, simple("train/loss", 1.0)) for s in range(10)]  # every step
    events += [(s, simple("test/error", 0.5)) for s in range(0, 10, 5)]
    events += [(s, simple("norm/l1", 1.0)) for s in range(0, 10, 5)]
    write_events(tmp_path / "cnn_P1_seed0", events)
    table, reports = load(tmp_path, TEMPLATE, return_report=True)
    assert table["step"].tolist() == [0, 5]
    assert reports[0].skipped == Counter({"steps without 'test/error' logged": 8})


def test_a_step_logged_twice_keeps_the_later_value(tmp_path):
    events = [(0, simple("test/error", 0.9)), (0, simple("norm/l1", 1.0)),
              (0, simple("test/error", 0.4))]
    write_events(tmp_path / "cnn_P1_seed0", events)
    table, reports = load(tmp_path, TEMPLATE, return_report=True)
    assert table["test_error"].tolist() == [pytest.approx(0.4)]
    assert sum(reports[0].skipped.values()) == 1


def test_no_event_files_is_a_clear_error(tmp_path):
    (tmp_path / "cnn_P1_seed0").mkdir()
    with pytest.raises(DataError, match="no TensorBoard event files"):
        tensorboard.read(tmp_path / "cnn_P1_seed0", None)


def test_a_run_without_scalars_is_a_clear_error(tmp_path):
    write_events(tmp_path / "cnn_P1_seed0", [])  # only the file_version event
    with pytest.raises(DataError, match="no scalar metrics"):
        tensorboard.read(tmp_path, None)


def test_unrecognised_tags_say_what_was_found(tmp_path):
    write_events(tmp_path / "cnn_P1_seed0", [(0, simple("acc", 0.5)), (0, simple("wnorm", 2.0))])
    with pytest.raises(DataError, match="missing required column.*'acc'.*'wnorm'"):
        load(tmp_path, TEMPLATE)
    table = load(tmp_path, {**TEMPLATE, "metrics": {"test_error": "acc",
                                                    "norm_weights": "wnorm"},
                            "units": {"test_error": "accuracy"}})
    assert table["test_error"].tolist() == [0.5] and table["norm_weights"].tolist() == [2.0]


# -- checksums and damage --------------------------------------------------------------

@pytest.fixture
def event_file(tmp_path):
    pytorch_run(tmp_path / "run", steps=range(40))
    (path,) = (tmp_path / "run").iterdir()
    return path


def test_every_record_is_read_from_an_intact_file(event_file):
    skipped = Counter()
    assert payloads_read(event_file, skipped) == [p for _, _, p in payloads_written(event_file)]
    assert not skipped


@pytest.mark.parametrize("record, offset, flip, reason", [
    (17, 14, 0x01, BAD_DATA),  # inside the record's data
    (5, 2, 0x40, DAMAGED),     # its length: now ~4 MB, untrusted; the reader resynchronises
], ids=["data-byte", "length-byte"])
def test_a_flipped_byte_loses_only_that_record(event_file, record, offset, flip, reason):
    records = payloads_written(event_file)
    blob = bytearray(event_file.read_bytes())
    blob[records[record][0] + offset] ^= flip
    event_file.write_bytes(bytes(blob))
    skipped = Counter()
    assert payloads_read(event_file, skipped) == [p for i, (_, _, p) in enumerate(records)
                                                  if i != record]
    assert skipped == Counter({reason: 1})


def test_a_truncated_file_keeps_every_whole_record(event_file):
    records = payloads_written(event_file)
    blob = event_file.read_bytes()
    event_file.write_bytes(blob[:records[-3][0] + 20])  # cut inside the third-last record
    skipped = Counter()
    assert payloads_read(event_file, skipped) == [p for _, _, p in records[:-3]]
    assert skipped == Counter({TRUNCATED: 1})


def test_a_truncated_event_file_reads_through_load(tmp_path, event_file):
    blob = event_file.read_bytes()
    event_file.write_bytes(blob[:-7])  # the last record: train/loss at step 39
    table, (report,) = load(event_file.parent, {"set": {"train_size": 10}},
                            return_report=True)
    assert len(table) == 40 and report.skipped == Counter({TRUNCATED: 1})
    # train/loss now misses a kept step: it stays apart from the canonical train_loss
    assert "train_loss" not in table and table["train/loss"].isna().sum() == 1
    assert "not logged at every kept step" in report.line()


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damage_never_raises_and_spares_every_untouched_record(event_file, data):
    """Random flips, cuts and insertions: no exception, every record outside is read."""
    pristine = event_file.read_bytes()
    records = payloads_written(event_file)
    blob = bytearray(pristine)
    damaged = []  # byte spans that were touched
    for _ in range(data.draw(st.integers(1, 3))):
        if not blob:
            break
        kind = data.draw(st.sampled_from(["flip", "insert", "cut"]))
        at = data.draw(st.integers(0, len(blob) - 1))
        if kind == "flip":
            blob[at] ^= data.draw(st.integers(1, 255))
            damaged.append((at, at + 1))
        elif kind == "insert":
            junk = data.draw(st.binary(min_size=1, max_size=40))
            blob[at:at] = junk
            # everything from `at` moves on; a record around `at` now holds the junk
            records = [(s if s < at else s + len(junk), e if e <= at else e + len(junk), p)
                       for s, e, p in records]
            damaged = [(s if s < at else s + len(junk), e if e <= at else e + len(junk))
                       for s, e in damaged]
            damaged.append((at, at + len(junk)))
        else:
            del blob[at:]
            damaged.append((at, len(pristine) * 2))
    chunk = data.draw(st.sampled_from([64, 1000, 1 << 24]))
    path = event_file.with_name("damaged.tfevents")
    path.write_bytes(bytes(blob))
    skipped = Counter()
    read = payloads_read(path, skipped, chunk_size=chunk)
    untouched = [p for s, e, p in records
                 if not any(a < e and s < b for a, b in damaged)]
    for payload in untouched:
        assert payload in read
    assert set(read) <= {p for _, _, p in payloads_written(event_file)}


def test_chunk_size_does_not_change_what_is_read(event_file):
    whole = payloads_read(event_file, Counter())
    assert payloads_read(event_file, Counter(), chunk_size=37) == whole


# -- the fast decoder agrees with protobuf ---------------------------------------------

def _protos():
    return tensorboard._protos()


def _reference(events):
    """(tag, step, value) of the scalars in serialised events, decoded with protobuf."""
    plugins, out = {}, []
    for event in events:
        for value in event.summary.value:
            if value.HasField("metadata"):
                plugins.setdefault(value.tag, value.metadata.plugin_data.plugin_name)
    for event in events:
        for value in event.summary.value:
            kind = value.WhichOneof("value")
            if kind == "simple_value" and plugins.get(value.tag, "") in ("", "scalars"):
                out.append((value.tag, event.step, np.float32(value.simple_value)))
            elif kind == "tensor" and plugins.get(value.tag) == "scalars":
                t = value.tensor
                if t.tensor_content:
                    number = np.frombuffer(t.tensor_content, "<f4" if t.dtype == 1 else "<f8")[0]
                else:
                    number = (t.float_val or t.double_val)[0]
                out.append((value.tag, event.step, number))
    return sorted(out, key=lambda x: (x[0], x[1]))


def _summary(tag, value, kind):
    """One Summary.value (as a Summary) of the kinds the property tests mix."""
    if kind == "simple":
        return simple(tag, value)
    if kind == "nometa":
        return tf2_scalar(tag, value, metadata=False)
    return tf2_scalar(tag, value, dtype=1 if kind.endswith("32") else 2,
                      layout="content" if kind.startswith("content") else "values")


SCALAR_KINDS = ["simple", "content32", "content64", "val32", "val64", "nometa"]


def decode(blobs, *, vectorised=True, batches=1):
    """EventScalars fed serialised events, in ``batches`` buffers."""
    scalars = EventScalars(_protos(), vectorised=vectorised)
    for part in np.array_split(np.arange(len(blobs)), batches):
        chosen = [blobs[i] for i in part]
        ends = np.cumsum([len(b) for b in chosen], dtype=np.int64)
        scalars.feed(b"".join(chosen), ends - [len(b) for b in chosen], ends)
    return scalars


def assert_same_scalars(fast, slow):
    """Two EventScalars read the same series, plugins, hyperparameters and skips."""
    fast_series, fast_skipped = fast.series()
    slow_series, slow_skipped = slow.series()
    assert list(fast_series) == list(slow_series)
    for tag, (steps, values) in slow_series.items():
        np.testing.assert_array_equal(fast_series[tag][0], steps)
        np.testing.assert_array_equal(fast_series[tag][1], values)
        assert fast_series[tag][1].dtype == values.dtype == np.float64
    assert (fast.plugins, fast.hparams, fast.undecodable) == (
        slow.plugins, slow.hparams, slow.undecodable)
    assert (fast_skipped, fast.ignored) == (slow_skipped, slow.ignored)


def decode_file_both_ways(path):
    """The records of an event file decoded with numpy and with protobuf: the same."""
    blobs = payloads_read(path, Counter())
    fast, slow = decode(blobs), decode(blobs, vectorised=False)
    assert_same_scalars(fast, slow)
    assert slow.decoded_one_by_one == len(blobs)
    return fast


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(
    st.lists(st.tuples(st.sampled_from(["a", "test/error", "norm/l1", "x" * 200, "é/ü",
                                        "y" * 300]),
                       st.floats(width=32, allow_nan=False),
                       st.sampled_from(SCALAR_KINDS)), min_size=1, max_size=4),
    st.integers(-2 ** 40, 2 ** 40),
    st.sampled_from(["scalars", "with histogram", "empty"])), min_size=1, max_size=30),
    st.integers(1, 3))
def test_fast_path_and_protobuf_agree(items, batches):
    """Events of one or several values, in every scalar encoding, decoded both ways."""
    events = []
    for values, step, extra in items:
        summary = summary_pb2.Summary()
        for tag, value, kind in values:
            summary.value.extend(_summary(tag, value, kind).value)
        if extra == "with histogram":  # not a scalar: the record goes through protobuf
            summary.value.add(tag="w", histo=summary_pb2.HistogramProto(num=1))
        elif extra == "empty":
            summary = summary_pb2.Summary()
        events.append(event_pb2.Event(wall_time=1.0, step=step, summary=summary))
    blobs = [e.SerializeToString() for e in events]
    fast = decode(blobs, batches=batches)
    slow = decode(blobs, vectorised=False, batches=batches)
    assert_same_scalars(fast, slow)
    assert fast.decoded_one_by_one == sum(extra == "with histogram" for *_, extra in items)

    # and both agree with a plain reading of the protobuf messages, for the tags that
    # are logged in one encoding only
    mixed = {}
    for event in events:
        for v in event.summary.value:
            mixed.setdefault(v.tag, set()).add(v.WhichOneof("value"))
    plain = [e for e in events if all(len(mixed[v.tag]) == 1 for v in e.summary.value)]
    series, _ = decode([e.SerializeToString() for e in plain]).series()
    got = sorted(((tag, int(s), v) for tag, (steps, values) in series.items()
                  for s, v in zip(steps, values, strict=True)), key=lambda x: (x[0], x[1]))
    expected = _reference(plain)
    assert [(t, s) for t, s, _ in got] == [(t, s) for t, s, _ in expected]
    np.testing.assert_array_equal([v for *_, v in got], [float(v) for *_, v in expected])


def test_pytorch_new_style_scalars(tmp_path):
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with torch_tb.SummaryWriter(str(tmp_path / "cnn_P3_seed0")) as writer:
        for step in range(3):
            writer.add_scalar("test/error", 0.5 / (step + 1), step, new_style=True)
            writer.add_scalar("norm/l1", 1.0 + step, step, new_style=True,
                              double_precision=True)
    table = load(tmp_path, TEMPLATE)
    np.testing.assert_array_equal(table["test_error"],
                                  np.float32([0.5, 0.25, 0.5 / 3]).astype(float))
    assert table["norm_l1"].tolist() == [1.0, 2.0, 3.0]


def test_many_runs_draw_a_progress_bar_on_request(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich draws as if on a terminal
    for size in range(1, 23):
        write_events(tmp_path / f"cnn_P{size}_seed0",
                     [(0, simple("test/error", 0.5)), (0, simple("norm/l1", 1.0))])
    table = load(tmp_path, TEMPLATE, show_progress=True)
    assert table["run_id"].nunique() == 22
    assert "reading TensorBoard runs" in capsys.readouterr().err


# -- float32 overflow and missing metadata (review fixes) -------------------------------

def pytorch_huge_norms(directory, steps=range(5), *, advice_followed=False):
    """PyTorch's SummaryWriter logging norms near 1e130: float32 turns them into inf."""
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with torch_tb.SummaryWriter(str(directory)) as writer:
        for step in steps:
            writer.add_scalar("test/error", 0.5 - 0.05 * step, step)
            if advice_followed:
                writer.add_scalar("lognorm/spectral", np.log(1e130 * (step + 1)), step)
            else:
                writer.add_scalar("norm/spectral", 1e130 * (step + 1), step)


def test_a_norm_beyond_float32_says_to_log_its_log(tmp_path):
    pytorch_huge_norms(tmp_path / "cnn_P100_seed0")
    with pytest.raises(DataError) as caught:
        load(tmp_path, TEMPLATE)
    err = caught.value
    assert err.column == "norm_spectral" and "TensorBoard stores scalars as float32" in str(err)
    assert "'lognorm/spectral'" in err.fix and "diverged" not in err.fix
    # the advice works: the norm's log, logged under lognorm/, is read as a log
    pytorch_huge_norms(tmp_path / "advice" / "cnn_P100_seed0", advice_followed=True)
    table = load(tmp_path / "advice", TEMPLATE)
    expected = np.log(1e130 * np.arange(1, 6)).astype(np.float32)
    np.testing.assert_allclose(table["lognorm_spectral"], expected, rtol=1e-6)


def test_omit_counts_overflowed_norms_and_says_why(tmp_path):
    pytorch_huge_norms(tmp_path / "cnn_P100_seed0")
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with torch_tb.SummaryWriter(str(tmp_path / "cnn_P200_seed0")) as writer:
        for step in range(5):
            writer.add_scalar("test/error", 0.4, step)
            writer.add_scalar("norm/spectral", 10.0 + step, step)
    table, (report,) = load(tmp_path, TEMPLATE, nan_policy="omit", return_report=True)
    assert table["train_size"].unique().tolist() == [200]
    assert report.skipped["NaN or inf test_error or norm (--nan-policy omit)"] == 5
    assert "5 of the skipped rows have a norm that is inf" in report.line()
    assert "float32" in report.line()


def test_missing_train_size_suggests_a_template_that_reads_the_runs(tmp_path):
    for size in (100, 200):
        pytorch_run(tmp_path / f"cnn-mnist-P{size}-s0", seed=size)
    with pytest.raises(DataError) as caught:
        load(tmp_path, {"set": {"n_test": 10000}})
    fix = caught.value.fix
    assert "rename the columns" not in fix and "set: {train_size:" in fix
    template = fix.split('template: "')[1].split('"')[0]
    assert template == "{architecture}-{dataset}-P{train_size}-s{seed}"
    table = load(tmp_path, {"runs": {"template": template}})
    assert sorted(table["train_size"].unique()) == [100, 200]
    assert table["dataset"].unique().tolist() == ["mnist"]


# -- add_scalars folders; events of several scalars --------------------------------------

@pytest.fixture(params=["torch", "tensorboardX"])
def summary_writer(request):
    """The SummaryWriter class of PyTorch or of tensorboardX."""
    module = "torch.utils.tensorboard" if request.param == "torch" else "tensorboardX"
    return pytest.importorskip(module).SummaryWriter


def curves(size, steps):
    rng = np.random.default_rng(size)
    return (rng.uniform(0.05, 0.9, len(steps)), rng.uniform(1, 1e6, len(steps)),
            rng.uniform(0, 3, len(steps)))


def write_runs(root, writer_class, main_tag, *, grouped, sizes=(100, 200), steps=range(0, 30, 3)):
    """Runs of test error, norm and loss, with ``add_scalars`` (grouped) or ``add_scalar``."""
    for size in sizes:
        errors, norms, losses = curves(size, steps)
        with writer_class(str(root / f"cnn_P{size}_seed0")) as writer:
            for step, error, norm, loss in zip(steps, errors, norms, losses, strict=True):
                if grouped:
                    writer.add_scalars(main_tag, {"error": error, "norm": norm}, step)
                else:
                    writer.add_scalar(f"{main_tag}/error", error, step)
                    writer.add_scalar(f"{main_tag}/norm", norm, step)
                writer.add_scalar("train/loss", loss, step)


@pytest.mark.parametrize("main_tag", ["eval", "eval/cifar10"])
def test_add_scalars_folders_are_metrics_of_their_run(tmp_path, summary_writer, main_tag):
    write_runs(tmp_path / "grouped", summary_writer, main_tag, grouped=True)
    write_runs(tmp_path / "plain", summary_writer, main_tag, grouped=False)
    folders = sorted(p.relative_to(tmp_path / "grouped").as_posix()
                     for p in (tmp_path / "grouped").rglob("*") if p.is_dir())
    assert f"cnn_P100_seed0/{main_tag.replace('/', '_')}_error" in folders or (
        f"cnn_P100_seed0/{main_tag}/error" in folders)  # PyTorch's or tensorboardX's
    mapping = {**TEMPLATE, "metrics": {"test_error": f"{main_tag}/error",
                                       "norm_spectral_complexity": f"{main_tag}/norm"}}
    grouped, (report,) = load(tmp_path / "grouped", mapping, return_report=True)
    plain = load(tmp_path / "plain", mapping)
    assert grouped["run_id"].unique().tolist() == ["cnn_P100_seed0", "cnn_P200_seed0"]
    assert grouped["train_size"].unique().tolist() == [100, 200]  # the parent's name
    pd.testing.assert_frame_equal(grouped.drop(columns="source"),
                                  plain.drop(columns="source"))
    errors, norms, _ = curves(200, range(0, 30, 3))
    run = grouped[grouped["train_size"] == 200]
    np.testing.assert_array_equal(run["test_error"], errors.astype(np.float32))
    np.testing.assert_array_equal(run["norm_spectral_complexity"], norms.astype(np.float32))
    assert (f"4 add_scalars() folders read as metrics of their runs ({main_tag}/error, "
            f"{main_tag}/norm)") in report.line()
    # given the run itself, the folders are its metrics too
    alone = load(tmp_path / "grouped" / "cnn_P200_seed0", mapping)
    pd.testing.assert_frame_equal(alone.drop(columns="source").reset_index(drop=True),
                                  run.drop(columns="source").reset_index(drop=True))
    # every record of the folders but the file header goes through the vectorised path
    for path in (tmp_path / "grouped").rglob("*tfevents*"):
        assert decode_file_both_ways(path).decoded_one_by_one == 1


def test_add_scalars_and_add_hparams_in_one_run(tmp_path):
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with torch_tb.SummaryWriter(str(tmp_path / "my-run")) as writer:
        for step in range(3):
            writer.add_scalars("eval", {"error": 0.5 - 0.1 * step, "norm": 1.0 + step}, step)
        writer.add_hparams({"arch": "resnet18", "dataset": "cifar10", "P": 5000, "seed": 3},
                           {"hparam/final_error": 0.3})
    table, report = tensorboard.read(tmp_path, Mapping.from_dict(
        {"metrics": {"norm_spectral": "eval/norm"}}))
    assert table["run_id"].unique().tolist() == ["my-run"]
    assert table["test_error"].tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert table["norm_spectral"].tolist() == [1.0, 2.0, 3.0]
    assert (table["architecture"].unique().tolist(), table["train_size"].unique().tolist()) == (
        ["resnet18"], [5000])
    assert "add_hparams() output" in report.line() and "2 add_scalars() folders" in report.line()


def test_nested_runs_are_not_taken_for_add_scalars_folders(tmp_path):
    """Only a folder whose every tag spells its name (``<tag>_<key>``, ``<tag>/<key>``)
    inside a run is a series of that run."""
    both = [(s, simple("test/error", 0.5)) for s in range(2)]
    both += [(s, simple("norm/l1", 1.0 + s)) for s in range(2)]
    write_events(tmp_path / "cnn_P100_seed0", both)
    write_events(tmp_path / "cnn_P100_seed0" / "cnn_P200_seed0", both)  # a run in a run
    write_events(tmp_path / "cnn_P100_seed0" / "seed1",  # one tag, not its folder's name
                 [(s, simple("test/error", 0.5)) for s in range(2)])
    write_events(tmp_path / "cnn_P100_seed0" / "eval_error",  # named so, another tag
                 [(s, simple("loss", 0.5)) for s in range(2)])
    write_events(tmp_path / "cnn_P100_seed0" / "train_loss_x",  # one tag of two spells it
                 [(s, simple(tag, 0.5)) for s in range(2) for tag in ("train/loss", "lr")])
    write_events(tmp_path / "group" / "eval_error",  # no run around it: a run
                 [(s, simple("eval", 0.5)) for s in range(2)])
    table, report = tensorboard.read(tmp_path, Mapping.from_dict(TEMPLATE))
    assert table["run_id"].unique().tolist() == ["cnn_P100_seed0",
                                                 "cnn_P100_seed0/cnn_P200_seed0"]
    assert table["train_size"].unique().tolist() == [100, 200]
    assert report.runs_found == 6 and "add_scalars" not in report.line()
    for run in ("cnn_P100_seed0/seed1", "cnn_P100_seed0/eval_error",
                "cnn_P100_seed0/train_loss_x", "group/eval_error"):
        assert f"run '{run}' has no step with" in report.line()


def test_an_add_scalars_metric_also_logged_in_the_run(tmp_path):
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    with torch_tb.SummaryWriter(str(tmp_path / "cnn_P1_seed0")) as writer:
        writer.add_scalar("eval/error", 0.9, 0)
        writer.add_scalar("norm/l1", 1.0, 0)
        writer.add_scalar("norm/l1", 2.0, 1)
        writer.add_scalars("eval", {"error": 0.4}, 0)  # the same step again
        writer.add_scalars("eval", {"error": 0.3}, 1)
    table, (report,) = load(tmp_path, TEMPLATE, return_report=True)
    assert table["test_error"].tolist() == pytest.approx([0.4, 0.3])
    assert report.skipped == Counter(
        {"values logged again at the same step (the later one kept)": 1})
    assert "'eval/error' of 'cnn_P1_seed0' is logged both in the run and in its " \
           "add_scalars() folder 'eval_error'" in report.line()


def write_several_per_event(directory, steps=range(0, 40, 4)):
    """PyTorch's SummaryWriter with one Summary of four scalars per step, in all of
    PyTorch's scalar encodings: simple_value, and new_style float32 and float64 tensors."""
    torch_tb = pytest.importorskip("torch.utils.tensorboard")
    from torch.utils.tensorboard.summary import scalar

    errors, norms, losses = curves(7, steps)
    with torch_tb.SummaryWriter(str(directory)) as writer:
        for step, error, norm, loss in zip(steps, errors, norms, losses, strict=True):
            summary = scalar("test/error", error)
            summary.value.extend(scalar("norm/spectral", norm, new_style=True).value)
            summary.value.extend(scalar("train/loss", loss, new_style=True,
                                        double_precision=True).value)
            summary.value.extend(scalar("lr", 0.1).value)
            writer.file_writer.add_summary(summary, step)
    return list(steps), errors, norms, losses


def test_events_of_several_scalars_are_read_vectorised(tmp_path):
    steps, errors, norms, losses = write_several_per_event(tmp_path / "cnn_P10_seed0")
    (path,) = (tmp_path / "cnn_P10_seed0").iterdir()
    fast = decode_file_both_ways(path)
    assert fast.decoded_one_by_one == 1  # the file header
    assert fast.plugins == {"norm/spectral": "scalars", "train/loss": "scalars"}
    table = load(tmp_path, TEMPLATE)
    assert table["step"].tolist() == steps
    np.testing.assert_array_equal(table["test_error"], errors.astype(np.float32))
    np.testing.assert_array_equal(table["norm_spectral"], norms.astype(np.float32))
    np.testing.assert_array_equal(table["train_loss"], losses)  # double_precision
    assert table["lr"].tolist() == [pytest.approx(0.1)] * len(steps)


def test_damage_in_events_of_several_scalars_is_counted(tmp_path):
    write_several_per_event(tmp_path / "cnn_P10_seed0")
    (path,) = (tmp_path / "cnn_P10_seed0").iterdir()
    records = payloads_written(path)
    blob = bytearray(path.read_bytes())
    blob[records[4][0] + 30] ^= 0x08  # inside the data of the event of step 12
    path.write_bytes(bytes(blob[:records[-1][0] + 20]))  # and the last one cut
    table, (report,) = load(tmp_path, TEMPLATE, return_report=True)
    assert table["step"].tolist() == [0, 4, 8, 16, 20, 24, 28, 32]
    assert report.skipped == Counter({BAD_DATA: 1, TRUNCATED: 1})


def test_a_tag_logged_twice_in_one_event_keeps_the_later_value(tmp_path):
    twice = summary_pb2.Summary(value=[
        summary_pb2.Summary.Value(tag="test/error", simple_value=0.9),
        summary_pb2.Summary.Value(tag="norm/l1", simple_value=1.0),
        summary_pb2.Summary.Value(tag="test/error", simple_value=0.4)])
    path = write_events(tmp_path / "cnn_P1_seed0", [(0, twice), (1, twice)])
    assert decode_file_both_ways(path).decoded_one_by_one == 1
    table, (report,) = load(tmp_path, TEMPLATE, return_report=True)
    assert table["test_error"].tolist() == [pytest.approx(0.4)] * 2
    assert sum(report.skipped.values()) == 2


def test_tags_that_hash_alike_are_still_told_apart(tmp_path, monkeypatch):
    path = write_events(tmp_path / "cnn_P1_seed0", [
        (s, summary_pb2.Summary(value=[simple(t, float(i + s)).value[0]
                                       for i, t in enumerate(["test/error", "norm/l1", "a"])]))
        for s in range(3)])
    honest = decode_file_both_ways(path).series()[0]
    monkeypatch.setattr(_tfevent, "_hash_rows", lambda words, length: np.zeros(len(length),
                                                                               np.uint64))
    colliding = decode_file_both_ways(path).series()[0]
    assert list(colliding) == list(honest) == ["test/error", "norm/l1", "a"]
    for tag, (_, values) in honest.items():
        assert colliding[tag][1].tolist() == values.tolist()


def test_a_tags_plugin_is_its_earliest_metadata_wherever_it_sits_in_an_event(tmp_path):
    """Values are decoded slot by slot across events; the plugin is still the one of the
    tag's first metadata in logging order, as protobuf decoding finds it."""
    def with_plugin(tag, value, plugin):
        summary = tf2_scalar(tag, value)
        summary.value[0].metadata.plugin_data.plugin_name = plugin
        return summary.value[0]

    first = summary_pb2.Summary(value=[simple("test/error", 0.5).value[0],
                                       with_plugin("norm/l1", 2.0, "scalars")])
    later = summary_pb2.Summary(value=[with_plugin("norm/l1", 3.0, "custom")])
    path = write_events(tmp_path / "cnn_P1_seed0", [(0, first), (1, later)])
    fast = decode_file_both_ways(path)
    assert fast.plugins == {"norm/l1": "scalars"} and fast.decoded_one_by_one == 1
    assert fast.series()[0]["norm/l1"][1].tolist() == [2.0, 3.0]
