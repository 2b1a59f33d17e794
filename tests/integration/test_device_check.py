"""The device check runs on a CPU with tiny sizes and writes its JSON and CSV."""

import json

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from reference_runs import device_check  # noqa: E402

torch.set_num_threads(1)


def test_device_check_on_cpu(tmp_path, capsys):
    assert device_check.main(["--out", str(tmp_path), "--tiny", "--device", "cpu",
                              "--seconds", "0.2"]) == 0
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert set(report["architectures"]) == {"cnn", "resnet", "vit"}
    for entry in report["architectures"].values():
        assert all(v > 0 for v in entry["images_per_s"].values())
        assert 0 < entry["norm_warm_s"] and 0 < entry["norm_overhead_of_epoch"] < 1
        assert entry["speedup_fast_1"] == pytest.approx(
            entry["images_per_s"]["fast_1"] / entry["images_per_s"]["plain"], rel=0.01)
    assert report["real_run"]["runs"] == 2
    table = pd.read_csv(report["real_run"]["table"])
    assert table["run_id"].nunique() == 2
    throughput = pd.read_csv(tmp_path / "throughput.csv")
    assert len(throughput) == 9 and set(throughput["path"]) == {"plain", "fast_1", "fast_stack"}


def test_a_failing_architecture_keeps_the_other_results(tmp_path):
    code = device_check.main(["--out", str(tmp_path), "--tiny", "--device", "cpu",
                              "--seconds", "0.1", "--archs", "nope", "cnn"])
    report = json.loads((tmp_path / "device_check.json").read_text())
    assert code == 1 and "unknown architecture" in report["architectures"]["nope"]["error"]
    assert report["architectures"]["cnn"]["images_per_s"]["fast_1"] > 0
    assert report["real_run"]["runs"] == 2
