"""Write every checkpoint of a distillation as a set of its own, and say how far each has moved from its start.

    python benchmarks/checkpoint_sets.py outputs/fashion-mnist-krr-st-m1000 --output_dir outputs/steps-m1000
    # -> outputs/steps-m1000/step-250, step-500, ...: hf-ssdd sets, usable as the benchmark's `shared` rows

Each set has the finished set's card (source, teacher, normalisation) with `steps` set to its checkpoint's step, so
the benchmark reads it as it reads the finished one (as a `shared` row, or as a `distilled` set). Keep the
checkpoints with `distill --save_total_limit`.

Per checkpoint (and for the finished set) it prints, with no label read:
- `image RMS change`: root-mean-square change of the images from the real ones they started as, in units of the
  source's standard deviation;
- `outside [0, 1]`: the fraction of pixels no real image can have;
- `R²(targets, teacher)`: how well the learned targets still match the teacher's representations of their own
  (current) images; 1 at the start.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
from pathlib import Path

import torch

from hf_ssdd.checkpoint import list_checkpoints, load_checkpoint
from hf_ssdd.distilled_set import CONFIG_FILE, DistilledSet
from hf_ssdd.evaluation.methods import Source, start_indices
from hf_ssdd.metrics import representation_r2


def drift(distilled: DistilledSet, start: torch.Tensor, source: Source) -> dict:
    """How far `distilled` is from its start `(m, C, H, W)` (normalised), and from the teacher's view of it."""
    x, y, start = distilled.pixel_values.cpu(), distilled.targets.cpu(), start.cpu()
    pixels = distilled.normalization.denormalize(x)
    with torch.no_grad():
        teacher = source.teacher.on_normalized(x.to(source.device), distilled.normalization).cpu()
    return {
        "image RMS change": (x - start).pow(2).mean().sqrt().item(),
        "outside [0, 1]": ((pixels < 0) | (pixels > 1)).float().mean().item(),
        "R²(targets, teacher)": representation_r2(y, teacher),
    }


def checkpoint_sets(distilled_dir: str, output_dir: str | None) -> list[dict]:
    from accelerate import PartialState

    finished = DistilledSet.load(distilled_dir)
    source = Source(finished, None, PartialState().device)
    start = source.normalization.normalize(source.images[start_indices(source, finished)])
    rows = []
    for checkpoint in [*list_checkpoints(distilled_dir), None]:
        if checkpoint is None:
            at_step, step = finished, f"{finished.metadata['steps']} (finished)"
        else:
            state = load_checkpoint(checkpoint)
            step, synthetic = state["step"], state["synthetic"]
            at_step = dataclasses.replace(
                finished,
                pixel_values=synthetic["pixel_values"].float(),
                targets=synthetic["targets"].float(),
                metadata={**finished.metadata, "steps": step, "final_loss": state["history"][-1]},
            )
            if output_dir:
                folder = at_step.save(Path(output_dir) / f"step-{step}")
                shutil.copy(Path(distilled_dir) / CONFIG_FILE, folder)  # so that its local source is found again
        rows.append({"step": step, **drift(at_step, start, source)})
        print(" | ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("distilled_dir", help="a folder written by `hf-ssdd distill`, with its checkpoints")
    parser.add_argument("--output_dir", help="write each checkpoint's set here (step-N); omit to print only")
    args = parser.parse_args()
    checkpoint_sets(args.distilled_dir, args.output_dir)
