"""bench_memory: peak memory of a distillation step against the number of synthetic images m, at 32x32 RGB.

    python benchmarks/bench_memory.py [--quick] [--max_memory_gb 8]

Each m runs in its own process (so the peak is that run's alone): build the distiller (ConvNet-3 32-64-128, a small
ViT teacher, n = 256, features and pool training in chunks of 512), take one outer step, and read the process's peak
resident memory. Printed beside it: the planner's estimate; the kernel: the KRR system (m x m in the dual, (p+1) x
(p+1) once the primal is cheaper) with the features `Φ_s (m, p+1)` and `K_xs (n, m)`; the synthetic set with its Adam
state; and what is left, the part that must stay flat in m.
The last line is the headline.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

GB = 1024**3


def worker(m: int, folder: Path, max_memory_gb: float) -> dict:
    from workloads import cifar_like_source, small_vit_teacher

    from hf_ssdd.methods.krr_st.config import KRRSTConfig
    from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller
    from hf_ssdd.methods.krr_st.memory import plan_memory

    cfg = KRRSTConfig(
        dataset=cifar_like_source(folder, max(m, 1024)), teacher=small_vit_teacher(folder), num_synthetic=m,
        batch_size=256, learner_depth=3, learner_width=32, pool_size=1, pool_steps=2, feature_chunk_size=512,
        pool_chunk_size=512, max_memory_gb=max_memory_gb, output_dir=str(folder / f"out-{m}"), report_to="none",
    )
    d = KRRSTDistiller(cfg)
    d.outer_step()
    shape, device = tuple(d.images.shape[1:]), d.accelerator.device
    plan = plan_memory(d.cfg, d.make_learner(), d.teacher, shape, len(d.images), device)
    kernel = next(v for k, v in plan.parts.items() if k.startswith("KRR system"))
    return {
        "m": m, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "estimate": plan.total,
        "kernel": kernel + plan.parts["features and K_xs"], "synthetic": plan.parts["synthetic set + Adam"],
        "system": next(k for k in plan.parts if k.startswith("KRR system")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="m up to 3,000 instead of 10,000")
    parser.add_argument("--max_memory_gb", type=float, default=8.0, help="the budget the planner checks against")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, Path(args.folder), args.max_memory_gb)))
        return

    sizes = [100, 300, 1000, 3000] if args.quick else [100, 300, 1000, 3000, 10_000]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for m in sizes:
            argv = [sys.executable, __file__, "--worker", str(m), "--folder", tmp, "--max_memory_gb",
                    str(args.max_memory_gb)]
            proc = subprocess.run(argv, capture_output=True, text=True)
            if proc.returncode:
                sys.exit(f"m={m} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(f"m={m}: peak {rows[-1]['peak'] / GB:.3f} GB", flush=True)

    print("\n| m | peak GB | planner estimate GB | KRR system | system, features, K_xs GB | synthetic set + Adam GB "
          "| rest GB |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        rest = r["peak"] - r["kernel"] - r["synthetic"]
        print(f"| {r['m']} | {r['peak'] / GB:.3f} | {r['estimate'] / GB:.3f} | {r['system']} | "
              f"{r['kernel'] / GB:.3f} | {r['synthetic'] / GB:.3f} | {rest / GB:.3f} |")
    small = next(r for r in rows if r["m"] == 1000)
    large = rows[-1]
    rest = [(r["peak"] - r["kernel"] - r["synthetic"]) for r in (small, large)]
    print(f"bench_memory: m={large['m']} peak {large['peak'] / GB:.2f} GB (target: m=10000 within 8 GB on CPU), "
          f"the rest x{rest[1] / rest[0]:.2f} from m=1000 to m={large['m']} (flat = 1.00)")


if __name__ == "__main__":
    main()
