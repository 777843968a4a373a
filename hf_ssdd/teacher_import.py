r"""`import-teacher`: a ResNet trained elsewhere with Barlow Twins, SimCLR, BYOL, ... made into a teacher folder.

    hf-ssdd import-teacher barlow_twins_resnet18_cifar100.pt --arch resnet18 --stem cifar \
        --image_mean 0.5071 0.4866 0.4409 --image_std 0.2673 0.2564 0.2762 --output_dir teacher  # the authors' 32 px
    hf-ssdd distill --teacher teacher ...

The checkpoint holds a backbone in torchvision's layout (`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`,
`layer2.0.downsample.0.weight`, ...), as solo-learn, lightly and most SSL code save it: possibly nested under
`state_dict` or `model`, its keys prefixed by `module.` (DDP), `backbone.` or `encoder.` (in any combination), next to
heads that are dropped (`fc`, projectors, predictors, momentum copies). It is read with `torch.load(weights_only=True)`
(a pickle that needs code to load is refused, so none runs) or as safetensors, and must match the chosen architecture
exactly: every backbone weight present, nothing left over, every shape the same. The folder is the one
`train-teacher` writes (see `model_folder`); its card names the checkpoint by file name and sha256.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch

from .config import ConfigError, check_output_dir
from .teacher_config import TeacherImportConfig

WRAPPERS = ("module.", "backbone.", "encoder.", "_orig_mod.")  # DDP, solo-learn / lightly / mmselfsup, torch.compile
NESTS = ("state_dict", "model")  # where checkpoints keep the weights beside optimiser state, epoch, ...
HEADS = ("fc", "projector", "projection_head", "predictor", "prediction_head", "head", "neck", "classifier",
         "prototypes", "data_preprocessor")  # first key parts of what is not the backbone; also anything "momentum"
SHOWN = 5  # keys named per list in an error message


def read_checkpoint(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a `.safetensors` file or a `torch.save` file (under `state_dict` or `model` if nested there)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, KeyError, EOFError, OSError) as err:
        needs = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))  # a class or function to call: not run
        if needs:
            raise ConfigError(
                f"checkpoint {path.name!r} needs code to load ({needs.group(1)}), which is not run; if you trust the "
                "file, save its weights alone: torch.save(torch.load(path, weights_only=False)['state_dict'], "
                "'weights.pt')."
            ) from None
        raise ConfigError(f"checkpoint {path.name!r} is not a torch.save file ({type(err).__name__}: "
                          f"{' '.join(str(err).split())[:120]}); check the file.") from None
    for key in NESTS:
        if isinstance(content, dict) and isinstance(content.get(key), dict):
            content = content[key]
            break
    if not isinstance(content, dict) or not all(isinstance(v, torch.Tensor) for v in content.values()):
        raise ConfigError(
            f"checkpoint {path.name!r} holds no state dict (a mapping of names to tensors) at its top level or under "
            f"{' or '.join(NESTS)}; save the backbone's state_dict() and import that."
        )
    return content


def backbone_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys in torchvision's layout: wrapper prefixes stripped, heads and momentum copies dropped."""
    kept, origin = {}, {}
    for key, value in state.items():
        name = key
        while name.startswith(WRAPPERS):
            name = name.split(".", 1)[1]
        first = name.split(".", 1)[0]
        if first in HEADS or "momentum" in first:
            continue
        if name in kept:
            raise ConfigError(f"checkpoint keys {origin[name]!r} and {key!r} both give {name!r}; keep one backbone.")
        kept[name], origin[name] = value, key
    return kept


def load_backbone(model: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Copy `state` into `model`, refusing any missing or unexpected key or any other shape, with one line naming them
    (`num_batches_tracked` may be absent: it does not change the eval-mode forward)."""
    expected = {k: v.shape for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    problems = [f"{len(missing)} missing ({_first(missing)})"] if missing else []
    problems += [f"{len(unexpected)} unexpected ({_first(unexpected)})"] if unexpected else []
    if problems:
        raise ConfigError(
            f"the checkpoint's keys do not fit {what}: {'; '.join(problems)}; check --arch, --hidden_sizes and "
            f"--depths, or strip the checkpoint's own prefix (known: {', '.join(WRAPPERS)}; dropped: "
            f"{', '.join(HEADS)}, momentum*)."
        )
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(shape)}" for k, shape in expected.items()
             if k in state and state[k].shape != shape]
    if wrong:
        raise ConfigError(
            f"{len(wrong)} weights of the checkpoint differ in shape from {what} (checkpoint vs model): "
            f"{_first(wrong)}; check --stem, --hidden_sizes and --num_channels."
        )
    model.load_state_dict(state, strict=False)


def _first(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f", ... {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def import_teacher(cfg: TeacherImportConfig) -> Path:
    """Convert `cfg.checkpoint` into a teacher folder at `cfg.output_dir` (layout: `model_folder`); return it."""
    from .data import Normalization
    from .model_cards import imported_teacher_card
    from .model_folder import save_model_folder
    from .resnet import PRESETS, TorchvisionResNetConfig, TorchvisionResNetModel
    from .teachers import file_sha256

    check_output_dir(cfg.output_dir, cfg.overwrite_output_dir)
    path = Path(cfg.checkpoint)
    if not path.is_file():
        raise ConfigError(f"checkpoint {cfg.checkpoint!r} is not a file; check the path.")
    config = TorchvisionResNetConfig(
        num_channels=cfg.num_channels, hidden_sizes=cfg.hidden_sizes, depths=cfg.depths,
        block=PRESETS[cfg.arch]["block"], stem=cfg.stem, stem_stride=cfg.stem_stride, stem_padding=cfg.stem_padding,
    )
    model = TorchvisionResNetModel(config).eval()
    load_backbone(model, backbone_state_dict(read_checkpoint(path)), f"{cfg.arch} with the {cfg.stem} stem")

    channels = cfg.num_channels
    normalization = Normalization(tuple(cfg.image_mean) * (channels // len(cfg.image_mean)),
                                  tuple(cfg.image_std) * (channels // len(cfg.image_std)))
    card = imported_teacher_card(cfg, model, normalization, path.name, file_sha256(path))
    out = save_model_folder(model, cfg.output_dir, cfg.image_size, normalization, cfg, "import_teacher", [], card)
    print(f"import-teacher: {path.name} -> {out} ({config.hidden_sizes[-1]}-d pooler_output)")
    if cfg.push_to_hub:
        from .hub import push_to_hub

        url = push_to_hub(out, cfg.push_to_hub, repo_type="model", private=cfg.private)
        print(f"import-teacher: pushed {out} to {url}")
    return out
