"""hf-ssdd: self-supervised dataset distillation (KRR-ST) on the Hugging Face stack."""

__version__ = "0.1.0"
