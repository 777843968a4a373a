"""What an hour of 2 CPU cores buys a Barlow Twins teacher: its probe curve against training minutes.

    python benchmarks/teacher_curve.py --config recipes/configs/fashion_mnist_teacher.yaml --snapshots 6 \
        --output_dir outputs/teacher-curve [any train-teacher option, e.g. --max_steps 600]

Trains one teacher exactly as `hf-ssdd train-teacher` does (same config, same steps; the finished teacher is saved to
`--output_dir`, a normal teacher folder) and keeps a copy of the encoder at `--snapshots` evenly spaced steps with
the wall time it took to reach them. Each snapshot is then scored two ways:

- label-free, on held-out source images (the source's `test` split, no labels read), the score that chooses a
  recipe: RankMe (Garrido et al., ICML 2023), the effective rank of the features, `exp` of the entropy of their
  normalised singular values; a collapsed or redundant representation scores low;
- with labels, reported and never used to choose: a linear probe (logistic regression, as the benchmark's `linear`
  protocol) on 1,000 class-balanced labelled training images, tested on the whole test split, for 3 draws of the
  labelled sample, and the same probe on raw pixels as the floor.

Writes `curve.json` and `curve.png` (probe accuracy and RankMe against minutes) into `--output_dir`.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hf_ssdd.parsing import parse_config  # noqa: E402
from hf_ssdd.teacher_config import TeacherTrainConfig  # noqa: E402

LABELS = 1000
PROBE_SEEDS = (0, 1, 2)
HELD_OUT = 2000


def effective_rank(features: torch.Tensor) -> float:
    """RankMe of `features (n, d)`: exp of the entropy of the singular values, normalised to sum to one."""
    s = torch.linalg.svdvals(features.double())
    p = s / s.sum() + 1e-12
    return float(torch.exp(-(p * p.log()).sum()))


def encode(encoder, images: torch.Tensor, normalization, image_size: int) -> torch.Tensor:
    """Pooled features `(n, d)` of uint8 `images (n, C, R, R)`, in chunks, resampled to `image_size` as in training."""
    import torch.nn.functional as F

    encoder.eval()
    out = []
    with torch.no_grad():
        for chunk in images.split(1000):
            x = normalization.normalize(chunk)
            if x.shape[-1] != image_size:
                x = F.interpolate(x, size=image_size, mode="bilinear", antialias=True, align_corners=False)
            out.append(encoder(pixel_values=x).pooler_output.flatten(1))
    return torch.cat(out)


def probe(train_features, train, test_features, test) -> list[float]:
    """Linear-probe accuracy (%) on `test` for each labelled draw of `LABELS` training images."""
    from hf_ssdd.targets import balanced_subset
    from hf_ssdd.transfer import logistic_regression

    scores = []
    for seed in PROBE_SEEDS:
        keep = balanced_subset(train.labels, LABELS, seed)
        predictions = logistic_regression(train_features[keep], train.labels[keep], test_features, train.num_classes,
                                          max_steps=500, weight_decay=5e-4, seed=seed)
        scores.append(100 * float((predictions == test.labels).float().mean()))
    return scores


def plot(rows: list[dict], pixels: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["minutes"] for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    mean = [sum(r["probe"]) / len(r["probe"]) for r in rows]
    left.plot(minutes, mean, "o-", label="teacher features")
    left.axhline(pixels, color="grey", ls="--", label="raw pixels")
    left.set(xlabel="training minutes (2 CPU cores)", ylabel=f"linear probe, {LABELS} labels (%)",
             title="with labels (reported, never used to choose)")
    left.legend()
    right.plot(minutes, [r["rankme"] for r in rows], "o-", color="C1")
    right.set(xlabel="training minutes (2 CPU cores)", ylabel="RankMe (effective rank)",
              title="label-free, held-out source images")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> None:
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from hf_ssdd.config import check_output_dir
    from hf_ssdd.data import Normalization
    from hf_ssdd.image_store import load_images
    from hf_ssdd.targets import load_target_splits
    from hf_ssdd.teacher_training import build_encoder, fit_barlow_twins, save_teacher

    argv = list(sys.argv[1:] if argv is None else argv)
    snapshots = 6
    if "--snapshots" in argv:
        at = argv.index("--snapshots")
        snapshots = int(argv[at + 1])
        del argv[at:at + 2]
    cfg = parse_config(TeacherTrainConfig, argv, prog="teacher_curve.py")
    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir)
    acc = Accelerator()
    set_seed(cfg.seed)
    source = load_images(cfg)
    images = source.images
    normalization = Normalization.resolve(images, cfg.mean, cfg.std)
    image_size = cfg.image_size or source.resolution
    encoder = build_encoder(cfg, source.channels, image_size)

    marks = {round(cfg.max_steps * k / snapshots) for k in range(1, snapshots + 1)}
    kept, start = [(0, 0.0, copy.deepcopy(encoder.state_dict()))], time.perf_counter()

    def on_step(step: int) -> None:
        if step in marks:
            kept.append((step, time.perf_counter() - start, copy.deepcopy(encoder.state_dict())))

    history = fit_barlow_twins(encoder, images, normalization, cfg, acc, on_step=on_step)
    wall = time.perf_counter() - start
    stats = {"num_images": len(images), "resolution": source.resolution, "channels": source.channels,
             "image_size": image_size, "steps": cfg.max_steps, "final_loss": history[-1]["loss"],
             "wall_time_s": wall, "num_processes": acc.num_processes, "device": acc.device.type}
    out = save_teacher(encoder, cfg.output_dir, cfg, normalization, stats, history)

    train, test = load_target_splits(cfg.dataset, resolution=source.resolution, channels=source.channels)
    held_out = test.images[:HELD_OUT]
    pixels = sum(probe(train.images.flatten(1).float(), train, test.images.flatten(1).float(), test)) / len(PROBE_SEEDS)
    rows = []
    for step, seconds, state in kept:
        encoder.load_state_dict(state)
        train_features = encode(encoder, train.images, normalization, image_size)
        test_features = encode(encoder, test.images, normalization, image_size)
        row = {"step": step, "minutes": seconds / 60, "epochs": step * cfg.batch_size / len(images),
               "rankme": effective_rank(encode(encoder, held_out, normalization, image_size)),
               "probe": probe(train_features, train, test_features, test)}
        rows.append(row)
        print(f"step {step:>6}  {row['minutes']:6.1f} min  {row['epochs']:5.1f} epochs  RankMe {row['rankme']:7.2f}  "
              f"probe {sum(row['probe']) / len(row['probe']):.2f}% (raw pixels {pixels:.2f}%)", flush=True)
    result = {"config": argv, "wall_time_s": wall, "feature_dim": int(train_features.shape[1]),
              "raw_pixels_probe": pixels, "snapshots": rows}
    (out / "curve.json").write_text(json.dumps(result, indent=1))
    plot(rows, pixels, out / "curve.png")
    print(f"wrote {out / 'curve.json'} and {out / 'curve.png'}")


if __name__ == "__main__":
    main()
