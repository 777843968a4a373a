"""The learners as `transformers` models, so a pre-trained learner is saved, loaded and shared like any Hub model.

    import hf_ssdd  # registers the classes below with the Auto classes
    model = AutoModel.from_pretrained("outputs/pretrained")                       # features, (n, feature_dim)
    model = AutoModelForImageClassification.from_pretrained("outputs/pretrained")  # features -> linear head

One config type, `hf_ssdd_learner`, covers every architecture of `learners.ARCHITECTURES`; `arch` and
`arch_options` pick it. Pre-training regresses the head onto target representations (`num_labels` = d), transfer
swaps the head for a classifier with `replace_head`. The same two functions, `head_of` and `replace_head`, serve any
`AutoModelForImageClassification`, so other architectures from transformers go through the same pipeline.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForImageClassification,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling, ImageClassifierOutput

from .config import ConfigError
from .learners import ARCHITECTURES, build_learner

MODEL_TYPE = "hf_ssdd_learner"


@strict
class LearnerConfig(PreTrainedConfig):
    """A learner of `learners.ARCHITECTURES` on `num_channels` x `image_size` x `image_size` inputs.

    Example:
        >>> config = LearnerConfig(arch="convnet", num_channels=1, image_size=28, arch_options={"width": 32})
        >>> LearnerForImageClassification(config).config.num_labels
        2
    """

    model_type = MODEL_TYPE

    arch: str = "convnet"
    num_channels: int = 3
    image_size: int = 32
    arch_options: dict[str, Any] | None = None

    def __post_init__(self, **kwargs):
        self.arch_options = dict(self.arch_options or {})
        super().__post_init__(**kwargs)


class LearnerPreTrainedModel(PreTrainedModel):
    config: LearnerConfig
    config_class = LearnerConfig
    base_model_prefix = "learner"
    main_input_name = "pixel_values"
    input_modalities = ("image",)

    def _init_weights(self, module: nn.Module) -> None:
        """PyTorch's own default initialisation, the one the learners are trained from during distillation."""
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            init.kaiming_uniform_(module.weight, a=math.sqrt(5))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                init.uniform_(module.bias, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
            if module.weight is not None:
                init.ones_(module.weight)
                init.zeros_(module.bias)
            if getattr(module, "running_mean", None) is not None:
                init.zeros_(module.running_mean)
                init.ones_(module.running_var)
                init.zeros_(module.num_batches_tracked)


class LearnerModel(LearnerPreTrainedModel):
    """Features only: `pixel_values (n, C, H, W)` -> `pooler_output (n, feature_dim)`."""

    def __init__(self, config: LearnerConfig):
        super().__init__(config)
        self.net = build_learner(config.arch, config.num_channels, config.image_size, **config.arch_options)
        self.feature_dim = self.net.feature_dim
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        features = self.net.embed(pixel_values)
        return BaseModelOutputWithPooling(last_hidden_state=features, pooler_output=features)


class LearnerForImageClassification(LearnerPreTrainedModel):
    """Features -> one linear layer: class logits after transfer, target representations during pre-training."""

    def __init__(self, config: LearnerConfig):
        super().__init__(config)
        self.learner = LearnerModel(config)
        self.classifier = nn.Linear(self.learner.feature_dim, config.num_labels)
        self.post_init()

    def forward(self, pixel_values: torch.Tensor, labels: torch.Tensor | None = None, **kwargs):
        logits = self.classifier(self.learner(pixel_values).pooler_output)
        loss = self.loss_function(labels, logits, self.config) if labels is not None else None
        return ImageClassifierOutput(loss=loss, logits=logits)


AutoConfig.register(MODEL_TYPE, LearnerConfig)
AutoModel.register(LearnerConfig, LearnerModel)
AutoModelForImageClassification.register(LearnerConfig, LearnerForImageClassification)


def learner_config(arch: str, channels: int, resolution: int, num_labels: int, **options) -> PreTrainedConfig:
    """The config of `arch`: a name of `learners.ARCHITECTURES`, or a transformers config / model (folder or Hub id)
    whose `AutoModelForImageClassification` is used instead, resized to `channels` and `num_labels`."""
    if arch in ARCHITECTURES:
        build_learner(arch, channels, resolution, **options)  # fail here, with the learner's own message
        return LearnerConfig(arch=arch, num_channels=channels, image_size=resolution, arch_options=options,
                             num_labels=num_labels)
    try:
        config = AutoConfig.from_pretrained(arch)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"arch={arch!r} is neither one of {', '.join(ARCHITECTURES)} nor a transformers config or model "
            f"(folder or reachable Hub id): {str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from None
    if options:
        raise ConfigError(f"options {sorted(options)} apply to hf-ssdd learners only, not to {arch!r}.")
    config.num_channels, config.num_labels = channels, num_labels
    if hasattr(config, "image_size"):
        config.image_size = resolution
    return config


def new_model(config: PreTrainedConfig) -> PreTrainedModel:
    """A randomly initialised `AutoModelForImageClassification` of `config`."""
    return AutoModelForImageClassification.from_config(config)


def head_of(model: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    """`(parent, name, linear)`: the last `nn.Linear` of the model's `classifier`, the layer that `replace_head` swaps.

    Its input is what linear probing and knowledge distillation call the model's features.
    """
    root = getattr(model, "classifier", None)
    if root is None:
        raise ConfigError(f"{type(model).__name__} has no `classifier`; use an AutoModelForImageClassification.")
    if isinstance(root, nn.Linear):
        return model, "classifier", root
    linears = [(name, m) for name, m in root.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"the classifier of {type(model).__name__} has no linear layer to replace.")
    path, linear = linears[-1]
    parent_path, _, name = path.rpartition(".")
    return (root.get_submodule(parent_path) if parent_path else root), name, linear


def replace_head(model: PreTrainedModel, num_labels: int, id2label: dict[int, str] | None = None) -> nn.Linear:
    """Put a freshly initialised `features -> num_labels` layer in place of the model's head; return it."""
    parent, name, old = head_of(model)
    head = nn.Linear(old.in_features, num_labels).to(old.weight.device)
    setattr(parent, name, head)
    model.config.num_labels = num_labels
    if id2label is not None:
        model.config.id2label = {int(k): str(v) for k, v in id2label.items()}
        model.config.label2id = {v: k for k, v in model.config.id2label.items()}
    return head


def features(model: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """The input of the model's head, `(n, feature_dim)`: the representation a linear probe reads."""
    seen = []
    hook = head_of(model)[2].register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    try:
        model(pixel_values=pixel_values)
    finally:
        hook.remove()
    return seen[-1].flatten(1)
