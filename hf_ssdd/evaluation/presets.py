"""Protocol presets: a paper's evaluation, as defaults under a benchmark's `pretrain` and `linear` settings.

`hf_ssdd` is ours (the package's defaults: KRR-ST's paper for pre-training, a standardised L-BFGS probe run to
convergence). `mkdt` is MKDT's (Joshi et al., ICLR 2025; their `eval.py`, `pretrain_methods/pretrain_mse.py` and
`evaluation/linear_evaluation.py`), so that numbers can be put beside its tables:

- pre-training: 20 epochs by MSE, SGD at the set's learned step size (else 0.1), momentum 0.9, weight decay 1e-4,
  batch 256, no augmentation, no learning-rate drop;
- linear probe: `torch.optim.LBFGS` at its defaults (no line search), 20 calls of 20 iterations, on the raw
  flattened features, cross-entropy + 1e-3 * ||W||^2 (our `weight_decay / 2` convention: 2e-3);
- few labels: a uniform random 1% or 5% of the target's training images (targets with `train_fraction`).

A key the benchmark's YAML gives wins over its preset's.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Preset:
    """What a preset sets: `pretrain` (`PretrainConfig` fields) and `linear` (`TransferConfig` fields) defaults, and
    the sentence that names it in results.md."""

    description: str
    pretrain: dict = field(default_factory=dict)
    linear: dict = field(default_factory=dict)


PRESETS = {
    "hf_ssdd": Preset("hf-ssdd's protocol (the package's defaults)"),
    "mkdt": Preset(
        "MKDT's protocol (Joshi et al., ICLR 2025): pre-training 20 epochs, SGD at the set's learned step size (else "
        "0.1), momentum 0.9, weight decay 1e-4, batch 256, no augmentation; a linear probe by torch's L-BFGS "
        "without line search, 20 calls of 20 iterations on raw features, cross-entropy + 1e-3·‖W‖², on a uniform "
        "random sample of the training labels",
        pretrain={"num_epochs": 20, "batch_size": 256, "momentum": 0.9, "weight_decay": 1e-4, "lr_drop": 1.0,
                  "dsa": False, "crop_padding": 0, "flip": False},
        linear={"max_steps": 20, "probe_rounds": 20, "probe_line_search": False, "standardize_features": False,
                "weight_decay": 2e-3, "label_sampling": "uniform"},
    ),
}
