"""gpu_check: what a lent GPU must tell us, in one command of under 8 minutes.

    python benchmarks/gpu_check.py             # on the GPU: writes benchmarks/results/gpu.md and gpu.json
    python benchmarks/gpu_check.py --dry_run   # the same code on the CPU at toy sizes (run by the test suite)

Checks, each with its number and a pass or fail:

- `device equals CPU`: one tiny distillation on the accelerator and on the CPU ends at the same synthetic set
  (the GPU's TF32 convolutions allow a little more than float32 rounding);
- `bf16 forwards`: from the same state, the first outer loss in bf16 is within 5% of the float32 one, and finite;
- `planner`: the planner's estimate of a step's device tensors (its total without the runtime, which the
  allocator does not see) against `torch.accelerator.max_memory_allocated`, within 15%.

Timings at the paper's CIFAR-100 shapes (m = 1000, real batch 1024, ConvNet-3 128-256-512), with two teachers of
random weights built here (no download): the paper's ResNet-18 with its CIFAR stem at 32x32, and a ViT-B/16 at
224x224. For each: seconds per outer step in the reference mode (the authors' step) and optimised (teacher-view
cache, planned chunks, bf16 forwards), the floor (the learner work no step avoids), and the projected wall time of
the paper's 160,000 steps.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from bench_step import distiller, floor_step, seconds_per_call
from workloads import ROOT, cifar_like_source, resnet18_cifar_teacher, save_preprocessor

from hf_ssdd.methods.krr_st.config import KRRSTConfig

PAPER_STEPS = 160_000
SIZES = {  # the paper's shapes, and toy ones for the dry run
    "full": {"m": 1000, "batch": 1024, "width": 128, "images": 4096, "resnet_widths": None, "vit": "base",
             "steps": 5},
    "dry": {"m": 16, "batch": 32, "width": 8, "images": 64, "resnet_widths": [8, 16, 32, 64], "vit": "toy",
            "steps": 1},
}
TOLERANCE = {"device equals CPU": 5e-3, "bf16 forwards": 5e-2, "planner": 0.15}


def accelerator_available() -> bool:
    return torch.accelerator.is_available()


def vit_teacher(folder: Path, size: str) -> str:
    """A ViT-B/16 at 224x224 (transformers' default ViT config), or a 2-layer toy at 32x32; random weights."""
    from transformers import ViTConfig, ViTModel

    path = Path(folder) / f"vit-{size}"
    if not (path / "config.json").exists():
        torch.manual_seed(0)
        config = ViTConfig() if size == "base" else ViTConfig(
            image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=64,
        )
        ViTModel(config, add_pooling_layer=False).save_pretrained(path)
        save_preprocessor(path, config.image_size, [0.5] * 3, [0.5] * 3)
    return str(path)


def tiny_run(folder: Path, **overrides) -> KRRSTConfig:
    values = dict(
        dataset=cifar_like_source(folder, 64), teacher=vit_teacher(folder, "toy"), num_synthetic=8, batch_size=16,
        learner_depth=2, learner_width=8, pool_size=2, pool_steps=4, max_steps=4, learning_rate=1e-2,
        output_dir=str(folder / "tiny"), save_steps=100, report_to="none",
    )
    return KRRSTConfig(**{**values, **overrides})


def check_device_equals_cpu(folder: Path) -> dict:
    """Max |difference| of the synthetic images and targets after 4 steps on the accelerator and on the CPU."""
    results, before = {}, os.environ.get("ACCELERATE_USE_CPU")
    for where in ("cpu", "device"):
        os.environ["ACCELERATE_USE_CPU"] = "true" if where == "cpu" or before == "true" else "false"
        d = distiller(tiny_run(folder), folder / f"tiny-{where}")
        result = d.train()
        results[where] = (result.pixel_values.float().cpu(), result.targets.float().cpu(), str(d.accelerator.device))
    os.environ.pop("ACCELERATE_USE_CPU")
    if before is not None:
        os.environ["ACCELERATE_USE_CPU"] = before
    diff = max((results["cpu"][i] - results["device"][i]).abs().max().item() for i in (0, 1))
    return {"value": diff, "detail": f"{results['device'][2]} against cpu, largest absolute difference of X_s and Y_s"}


def check_bf16(folder: Path) -> dict:
    """Relative difference of the first outer loss in bf16 and in float32, from the same state."""
    losses = {}
    for precision in ("no", "bf16"):
        d = distiller(tiny_run(folder, mixed_precision=precision), folder / f"bf16-{precision}")
        losses[precision] = d.outer_step()
    relative = abs(losses["bf16"] - losses["no"]) / abs(losses["no"])
    finite = math.isfinite(losses["bf16"])
    return {"value": relative if finite else float("inf"),
            "detail": f"loss float32 {losses['no']:.6f}, bf16 {losses['bf16']:.6f}"}


def workloads(sizes: dict, folder: Path) -> dict[str, KRRSTConfig]:
    """The paper's CIFAR-100 step with each teacher."""
    base = dict(
        dataset=cifar_like_source(folder, sizes["images"]), num_synthetic=sizes["m"], batch_size=sizes["batch"],
        learner_depth=3, learner_width=sizes["width"], pool_size=2, pool_steps=2, max_steps=PAPER_STEPS,
    )
    resnet = resnet18_cifar_teacher(folder, sizes["resnet_widths"])
    vit = vit_teacher(folder, sizes["vit"])
    return {"ResNet-18 (CIFAR stem), 32x32": KRRSTConfig(teacher=resnet, **base),
            f"ViT-{'B/16' if sizes['vit'] == 'base' else 'toy'}, {224 if sizes['vit'] == 'base' else 32}px":
                KRRSTConfig(teacher=vit, **base)}


def planner_check(d) -> dict | None:
    """The planner's device tensors against the allocator's peak over the timed steps (None without accelerator)."""
    from hf_ssdd.methods.krr_st.memory import plan_memory

    plan = plan_memory(d.cfg, d.make_learner(), d.teacher, tuple(d.images.shape[1:]), len(d.images),
                       d.accelerator.device)
    estimate = plan.total - plan.parts["runtime"] - plan.parts["real images (uint8)"]
    if not accelerator_available():
        return None
    peak = torch.accelerator.max_memory_allocated()
    return {"value": abs(estimate - peak) / peak, "detail": f"estimate {estimate / 2**30:.2f} GiB, "
            f"measured peak {peak / 2**30:.2f} GiB"}


def release() -> None:
    gc.collect()
    if accelerator_available():
        torch.accelerator.empty_cache()


def time_workload(name: str, cfg: KRRSTConfig, folder: Path, steps: int) -> tuple[dict, dict | None]:
    reference = distiller(dataclasses.replace(cfg, reference=True), folder / "reference")
    t_reference = seconds_per_call(reference.outer_step, steps)
    del reference
    release()
    optimised = distiller(
        dataclasses.replace(cfg, teacher_views=2, teacher_cache_dir=str(folder / "cache"), mixed_precision="bf16"),
        folder / "optimised",
    )
    if accelerator_available():
        torch.accelerator.reset_peak_memory_stats()  # from here: what the steps hold, the persistent state included
    t_optimised = seconds_per_call(optimised.outer_step, steps)
    planner = planner_check(optimised)
    t_floor = seconds_per_call(floor_step(optimised), steps)
    row = {
        "workload": name, "device": str(optimised.accelerator.device), "reference_s": t_reference,
        "optimised_s": t_optimised, "floor_s": t_floor, "feature_chunk_size": optimised.cfg.feature_chunk_size,
        "projected_hours": t_optimised * PAPER_STEPS / 3600, "reference_hours": t_reference * PAPER_STEPS / 3600,
    }
    del optimised
    release()
    return row, planner


def markdown(report: dict) -> str:
    lines = [f"# GPU check ({report['device']}{', dry run on CPU' if report['dry_run'] else ''})", "",
             f"`python benchmarks/gpu_check.py{' --dry_run' if report['dry_run'] else ''}`, {report['date']}, "
             f"torch {report['torch']}, {report['wall_s']:.0f} s.", "",
             "| check | value | tolerance | result | detail |", "|---|---|---|---|---|"]
    for name, check in report["checks"].items():
        value = "n/a" if check["value"] is None else f"{check['value']:.2e}"
        lines.append(f"| {name} | {value} | {check['tolerance']} | {check['result']} | {check['detail']} |")
    lines += ["", f"Outer step at the paper's CIFAR-100 shapes (m = {report['sizes']['m']}, real batch "
              f"{report['sizes']['batch']}, ConvNet-3 width {report['sizes']['width']}):", "",
              "| teacher | device | reference s/step | optimised s/step | reference/optimised | floor s | step/floor "
              f"| {PAPER_STEPS:,} steps, optimised | reference |", "|---|---|---|---|---|---|---|---|---|"]
    for row in report["timings"]:
        lines.append(
            f"| {row['workload']} | {row['device']} | {row['reference_s']:.3f} | {row['optimised_s']:.3f} | "
            f"{row['reference_s'] / row['optimised_s']:.2f}x | {row['floor_s']:.3f} | "
            f"{row['optimised_s'] / row['floor_s']:.2f} | {row['projected_hours']:.1f} h | "
            f"{row['reference_hours']:.1f} h |"
        )
    return "\n".join(lines) + "\n"


def verdict(value: float | None, tolerance: float) -> str:
    if value is None:
        return "skipped (no accelerator)"
    return "pass" if value <= tolerance else "FAIL"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry_run", action="store_true", help="toy sizes on the CPU: checks that the script runs")
    parser.add_argument("--output_dir", default=None,
                        help="where gpu.md and gpu.json go (default: benchmarks/results; a temporary folder with "
                             "--dry_run)")
    parser.add_argument("--steps", type=int, default=None, help="timed outer steps per mode (default 5; 1 dry)")
    args = parser.parse_args(argv)
    sizes = SIZES["dry" if args.dry_run else "full"]
    steps = args.steps or sizes["steps"]
    if args.dry_run:
        os.environ["ACCELERATE_USE_CPU"] = "true"
    elif not accelerator_available():
        parser.error("no accelerator here; use --dry_run to run the same code on the CPU.")

    start = time.perf_counter()
    checks, timings = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        checks["device equals CPU"] = check_device_equals_cpu(tmp)
        checks["bf16 forwards"] = check_bf16(tmp)
        planners = []
        for i, (name, cfg) in enumerate(workloads(sizes, tmp).items()):
            row, planner = time_workload(name, cfg, tmp / f"workload-{i}", steps)
            timings.append(row)
            planners.append(planner)
            print(f"{name}: reference {row['reference_s']:.3f} s, optimised {row['optimised_s']:.3f} s, floor "
                  f"{row['floor_s']:.3f} s per step", flush=True)
        worst = max(planners, key=lambda p: -1 if p is None else p["value"])
        checks["planner"] = worst or {"value": None, "detail": "needs torch.accelerator's allocator statistics"}
    for name, check in checks.items():
        check["tolerance"] = TOLERANCE[name]
        check["result"] = verdict(check["value"], TOLERANCE[name])

    report = {
        "device": timings[0]["device"], "dry_run": args.dry_run, "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__, "python": platform.python_version(), "sizes": sizes,
        "wall_s": time.perf_counter() - start, "checks": checks, "timings": timings,
    }
    out = Path(args.output_dir or (tempfile.mkdtemp() if args.dry_run else ROOT / "benchmarks" / "results"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu.md").write_text(markdown(report))
    print(markdown(report))
    print(f"gpu_check: wrote {out / 'gpu.md'} and gpu.json in {report['wall_s']:.0f} s")
    return report


if __name__ == "__main__":
    main()
