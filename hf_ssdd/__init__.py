"""hf-ssdd: self-supervised dataset distillation (KRR-ST) on the Hugging Face stack.

Importing the package registers its learners and its torchvision-layout ResNets with the transformers Auto classes,
so that `AutoModel.from_pretrained` loads a model written by `hf-ssdd pretrain`, `train-teacher` or `import-teacher`.
"""

__version__ = "0.1.0"

from . import modeling, resnet  # noqa: E402,F401  (registration is the point of this import)
