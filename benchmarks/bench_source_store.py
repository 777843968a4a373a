"""bench_source_store: a large PNG source decoded once per node into one mapped file, against a copy per process.

    python benchmarks/bench_source_store.py [--images 200000] [--batches 20] [--only store|distill]

Builds, in a temporary folder, a parquet folder of `--images` PNG-encoded 64x64 RGB images (random smooth images:
8x8 noise, bilinearly upsampled), the shape of ImageNet 64x64. Then runs each way of loading it on 1 and on 2
processes started together (as `accelerate launch` starts them on one node):

- `old`: every process decodes the whole source itself, one PIL image at a time, into its own uint8 tensor
  (`image_store.decode_images(workers=1)`: the loop hf-ssdd had before `image_store`);
- `new`: `image_store.load_images`: the first process decodes with one worker process per usable core into the
  cache file, the others wait on its lock, and every process maps that file.

Each process then does what `distill` does with the source: measures its normalisation (a pass over every image),
and reads `--batches` random batches of 256 (normalised float32). It reports its load time and its anonymous memory
(`RssAnon` of /proc/self/status: memory that is its own, not shared) after the imports, after loading and measuring,
and after the batches; `RssFile` is the page cache it maps (shared between processes). Decoding throughput is
`--images` over the 1-process load time.

Then a whole `distill` on 2 processes (`torch.distributed.run --nproc_per_node 2`, on CPU: the memory is the
host's), KRR-ST for 3 steps with a 2-layer ViT teacher at 64x64, on 2,000 of these images and on all `--images`,
each first with empty caches (the process that converts the parquet to Arrow and decodes the store is rank 0) and
then again with both caches warm. A thread in each process samples its anonymous memory (`Anonymous` of
/proc/self/smaps_rollup) every 20 ms; each reports it at its start (before the imports), at its peak and at the
end. The last line is the headline: how much more a process's peak is on the large source than on 2,000 images.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

SHARD = 10_000  # images per parquet file
GB = 1024**3


# ---------------------------------------------------------------------------------------------------------------------
# The source
# ---------------------------------------------------------------------------------------------------------------------


def write_shard(args: tuple[Path, int, int, int]) -> None:
    """`n` PNG images of `side`x`side` RGB into one parquet file, from seed `index`."""
    import datasets
    from PIL import Image

    path, index, n, side = args
    rng = np.random.default_rng(index)
    encoded = []
    for low in rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8):
        buffer = io.BytesIO()
        Image.fromarray(low).resize((side, side), Image.BILINEAR).save(buffer, format="PNG")
        encoded.append({"bytes": buffer.getvalue(), "path": None})
    features = datasets.Features({"image": datasets.Image()})
    shard = datasets.Dataset.from_dict({"image": encoded}, features=features)
    shard.to_parquet(str(path / f"train-{index:05d}.parquet"))


def build_source(folder: Path, images: int, side: int = 64) -> Path:
    path = folder / "source"
    path.mkdir()
    shards = [(path, i, min(SHARD, images - i * SHARD), side) for i in range((images + SHARD - 1) // SHARD)]
    with get_context("spawn").Pool(len(os.sched_getaffinity(0))) as pool:
        pool.map(write_shard, shards)
    return path


# ---------------------------------------------------------------------------------------------------------------------
# One process
# ---------------------------------------------------------------------------------------------------------------------


def memory() -> dict:
    """`RssAnon` and `RssFile` of this process, in GB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {name: int(fields[name].split()[0]) * 1024 / GB for name in ("RssAnon", "RssFile")}


def worker(mode: str, source: str, cache_dir: str, batches: int) -> dict:
    import torch

    from hf_ssdd.config import SourceConfig
    from hf_ssdd.data import Normalization, image_column, load_source
    from hf_ssdd.image_store import decode_images, load_images

    ds = load_source(source)  # the Arrow cache of the parquet files, built once by the parent
    started = memory()
    start = time.perf_counter()
    if mode == "old":
        images = decode_images(ds, image_column(ds), workers=1)[0]
    else:
        images = load_images(SourceConfig(dataset=source), cache_dir=cache_dir).images
    load_s = time.perf_counter() - start
    normalization = Normalization.measure(images)
    loaded = memory()
    generator = torch.Generator().manual_seed(int(os.environ["RANK"]))
    for _ in range(batches):
        x = normalization.normalize(images[torch.randint(len(images), (256,), generator=generator)])  # (256, 3, 64, 64)
        assert torch.isfinite(x).all()
    return {"load_s": load_s, "started": started, "loaded": loaded, "batches": memory()}


def launch(mode: str, processes: int, source: Path, cache_dir: Path, batches: int) -> list[dict]:
    """`processes` workers started together; their reports, by rank."""
    procs = [
        subprocess.Popen([sys.executable, __file__, "--worker", mode, str(source), str(cache_dir), str(batches)],
                         env={**os.environ, "RANK": str(rank), "OMP_NUM_THREADS": "1"}, stdout=subprocess.PIPE,
                         text=True)
        for rank in range(processes)
    ]
    reports = []
    for proc in procs:
        out, _ = proc.communicate()
        assert proc.returncode == 0, f"{mode} worker failed"
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


# ---------------------------------------------------------------------------------------------------------------------
# A whole distill on 2 processes
# ---------------------------------------------------------------------------------------------------------------------


def anonymous() -> float:
    """`Anonymous` of /proc/self/smaps_rollup, GB: memory that is this process's own (the mapped store is not)."""
    text = Path("/proc/self/smaps_rollup").read_text()
    return int(next(line for line in text.splitlines() if line.startswith("Anonymous:")).split()[1]) * 1024 / GB


def distill_worker(source: str, teacher: str, output_dir: str) -> dict:
    """One process of a 3-step KRR-ST distillation of `source`, its anonymous memory sampled every 20 ms."""
    import threading

    start = anonymous()  # before hf-ssdd, torch and datasets are imported
    peak = [start]

    def sample():
        while True:
            peak[0] = max(peak[0], anonymous())
            time.sleep(0.02)

    threading.Thread(target=sample, daemon=True).start()
    from hf_ssdd.methods.krr_st.config import KRRSTConfig
    from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller

    cfg = KRRSTConfig(dataset=source, teacher=teacher, num_synthetic=10, max_steps=3, batch_size=64, learner_width=8,
                      pool_steps=2, output_dir=output_dir, save_steps=100, report_to="none")
    KRRSTDistiller(cfg).train()
    end = anonymous()
    return {"rank": int(os.environ["RANK"]), "start": start, "peak": max(peak[0], end), "end": end}


def launch_distill(source: Path, teacher: str, caches: Path, output_dir: Path) -> list[dict]:
    """`distill_worker` on 2 processes started by torch's launcher, with `caches` as both caches; reports by rank."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "HF_DATASETS_CACHE": str(caches / "arrow"),
           "HF_SSDD_IMAGE_CACHE": str(caches / "images")}
    shutil.rmtree(output_dir, ignore_errors=True)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", __file__,
                           "--distill_worker", str(source), teacher, str(output_dir)],
                          env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"distill on 2 processes failed:\n{proc.stderr[-2000:]}"
    return [json.loads((output_dir.parent / f"memory-{rank}.json").read_text()) for rank in range(2)]


def run_distill(folder: Path, images: int) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from workloads import small_vit_teacher

    teacher = small_vit_teacher(folder, side=64)
    rows = []
    for n in sorted({min(2000, images), images}):
        (folder / f"distill-{n}").mkdir()
        source = build_source(folder / f"distill-{n}", n)
        caches = folder / f"distill-caches-{n}"
        for state in ("cold", "warm"):
            for r in launch_distill(source, teacher, caches, folder / "distilled"):
                rows.append((n, state, r))
    print("\n| source images | caches | rank | anonymous GB: start | peak | end |")
    print("|---|---|---|---|---|---|")
    for n, state, r in rows:
        print(f"| {n} | {state} | {r['rank']} | {r['start']:.2f} | {r['peak']:.2f} | {r['end']:.2f} |")
    small, large = min(n for n, _, _ in rows), max(n for n, _, _ in rows)
    growth = {state: max(r["peak"] for n, s, r in rows if (n, s) == (large, state))
              - max(r["peak"] for n, s, r in rows if (n, s) == (small, state)) for state in ("cold", "warm")}
    print(f"\nbench_source_store distill: a process's peak anonymous memory on {large} images "
          f"({large * 3 * 64 * 64 / GB:.2f} GB decoded) minus on {small}, 2 processes: {growth['cold']:+.2f} GB with "
          f"empty caches, {growth['warm']:+.2f} GB with warm ones")


# ---------------------------------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------------------------------


def main(images: int, batches: int, only: str | None) -> None:
    folder = Path(tempfile.mkdtemp(prefix="bench_source_store-"))
    os.environ["HF_DATASETS_CACHE"] = str(folder / "hf_datasets")  # the parquet's Arrow cache stays in `folder`
    try:
        if only != "distill":
            run(folder, images, batches)
        if only != "store":
            run_distill(folder, images)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def run(folder: Path, images: int, batches: int) -> None:
    start = time.perf_counter()
    source = build_source(folder, images)
    from hf_ssdd.data import load_source

    load_source(str(source))  # parquet -> Arrow cache, once, before any process is timed
    print(f"source: {images} PNG 64x64 RGB images, {sum(f.stat().st_size for f in source.iterdir()) / GB:.2f} GB "
          f"encoded, built in {time.perf_counter() - start:.0f} s; {len(os.sched_getaffinity(0))} usable cores")

    rows = []
    for mode in ("old", "new"):
        for processes in (1, 2):
            reports = launch(mode, processes, source, folder / f"cache-{mode}-{processes}", batches)
            for rank, r in enumerate(reports):
                rows.append((mode, processes, rank, r))
    warm = launch("new", 1, source, folder / "cache-new-1", batches)[0]  # the file exists: a cache hit

    print("\n| way | processes | rank | load s | RssAnon GB: imports | loaded + measured | after batches "
          "| RssFile GB after batches |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, processes, rank, r in rows + [("new, cache hit", 1, 0, warm)]:
        print(f"| {mode} | {processes} | {rank} | {r['load_s']:.1f} | {r['started']['RssAnon']:.2f} | "
              f"{r['loaded']['RssAnon']:.2f} | {r['batches']['RssAnon']:.2f} | {r['batches']['RssFile']:.2f} |")
    one = {mode: r for mode, processes, _, r in rows if processes == 1}
    old_rate, new_rate = images / one["old"]["load_s"], images / one["new"]["load_s"]
    growth = {mode: max(r["batches"]["RssAnon"] - r["started"]["RssAnon"] for m, p, _, r in rows if (m, p) == (mode, 2))
              for mode in ("old", "new")}
    print(f"\nbench_source_store: decoding {old_rate:.0f} -> {new_rate:.0f} images/s ({new_rate / old_rate:.2f}x on "
          f"{len(os.sched_getaffinity(0))} cores); RssAnon growth per process with 2 processes: "
          f"old {growth['old']:.2f} GB, new {growth['new']:.2f} GB ({images} images, {images * 3 * 64 * 64 / GB:.2f} "
          f"GB decoded); cache hit loads in {warm['load_s']:.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=200_000, help="source size (ImageNet 64x64: 1,281,167)")
    parser.add_argument("--batches", type=int, default=20, help="random batches of 256 each process reads")
    parser.add_argument("--only", choices=("store", "distill"), help="run one of the two parts only")
    parser.add_argument("--worker", nargs=4, metavar=("MODE", "SOURCE", "CACHE", "BATCHES"), help=argparse.SUPPRESS)
    parser.add_argument("--distill_worker", nargs=3, metavar=("SOURCE", "TEACHER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        mode, source, cache_dir, batches = args.worker
        print(json.dumps(worker(mode, source, cache_dir, int(batches))))
    elif args.distill_worker:
        report = distill_worker(*args.distill_worker)  # beside the output folder: 2 processes share one stdout
        (Path(args.distill_worker[2]).parent / f"memory-{report['rank']}.json").write_text(json.dumps(report))
    else:
        main(args.images, args.batches, args.only)
