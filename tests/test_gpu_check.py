"""benchmarks/gpu_check.py: its dry run on the CPU keeps it runnable for the day a GPU is lent; on an accelerator,
its checks are the `gpu`-marked tests."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
needs_accelerator = pytest.mark.skipif(not torch.accelerator.is_available(), reason="no accelerator")


@pytest.fixture
def gpu_check(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import gpu_check

    return gpu_check


def test_the_dry_run_writes_every_check_and_timing_with_finite_numbers(tmp_path):
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--dry_run", "--output_dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["dry_run"] and report["device"] == "cpu"
    checks = report["checks"]
    assert checks["device equals CPU"]["value"] == 0.0, "the same run on the same device is bitwise the same"
    assert checks["device equals CPU"]["result"] == "pass" and checks["bf16 forwards"]["result"] == "pass"
    assert checks["planner"]["result"] == "skipped (no accelerator)"
    assert [row["workload"].split(",")[0] for row in report["timings"]] == ["ResNet-18 (CIFAR stem)", "ViT-toy"]
    for row in report["timings"]:
        assert 0 < row["floor_s"] and 0 < row["optimised_s"] and 0 < row["reference_s"]
        assert row["projected_hours"] == pytest.approx(row["optimised_s"] * 160_000 / 3600)
    table = (tmp_path / "gpu.md").read_text()
    assert "| device equals CPU | 0.00e+00 | 0.005 | pass |" in table and "ResNet-18 (CIFAR stem)" in table


@pytest.mark.gpu
@needs_accelerator
def test_a_distillation_on_the_accelerator_ends_where_the_cpu_run_ends(gpu_check, tmp_path):
    check = gpu_check.check_device_equals_cpu(tmp_path)
    assert check["value"] <= gpu_check.TOLERANCE["device equals CPU"], check["detail"]


@pytest.mark.gpu
@needs_accelerator
def test_bf16_forwards_give_the_float32_loss_within_5_percent(gpu_check, tmp_path):
    check = gpu_check.check_bf16(tmp_path)
    assert check["value"] <= gpu_check.TOLERANCE["bf16 forwards"], check["detail"]


@pytest.mark.gpu
@needs_accelerator
def test_the_planner_estimates_the_allocators_peak_within_15_percent(gpu_check, tmp_path):
    sizes = {**gpu_check.SIZES["full"], "m": 256, "batch": 256, "width": 32, "images": 1024}
    name, cfg = next(iter(gpu_check.workloads(sizes, tmp_path).items()))
    _, planner = gpu_check.time_workload(name, cfg, tmp_path / "workload", steps=1)
    assert planner["value"] <= gpu_check.TOLERANCE["planner"], planner["detail"]
