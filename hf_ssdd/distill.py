"""`distill`: the stage that runs any method of `hf_ssdd.methods` on its config, start to finish.

    hf-ssdd distill --config recipes/configs/fashion_mnist.yaml                  # KRR-ST, the default method
    hf-ssdd distill --method mkdt --config recipes/configs/fashion_mnist_mkdt.yaml
    accelerate launch --config_file recipes/accelerate/multi_gpu.yaml recipes/distill.py --config ...
"""

from __future__ import annotations

from . import methods
from .methods.config import DistillConfig


def distill(cfg: DistillConfig):
    """Distil `cfg.dataset` with `cfg.teacher` by `cfg.method` and write the result to `cfg.output_dir`. Returns
    a `DistilledSet`.

    The command's work ends here, so its process group does too; a `Distiller` alone leaves it to its caller, who
    may run several in one launch."""
    distiller = methods.load(methods.method_named(cfg.method).distiller)(cfg)
    distilled = distiller.train()
    distiller.accelerator.state.destroy_process_group()
    return distilled


def plan(cfg: DistillConfig):
    """`hf-ssdd plan`: print the memory estimate of `cfg`'s method on this machine's device."""
    return methods.load(methods.method_named(cfg.method).plan)(cfg)
