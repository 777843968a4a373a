"""`import-teacher`: a ResNet-18 checkpoint in torchvision's layout, saved as SSL code saves it, gives the features a
reference forward computes from its state dict, and a checkpoint that does not fit is one line naming why."""

import hashlib
import json

import pytest
import torch
import torch.nn.functional as F

from hf_ssdd.cli import main
from hf_ssdd.config import ConfigError
from hf_ssdd.teacher_config import TeacherImportConfig
from hf_ssdd.teacher_import import import_teacher

WIDTHS = [16, 32, 64, 128]  # a narrow ResNet-18: --hidden_sizes 16 32 64 128
NORMALIZE = ["--image_mean", "0.5", "--image_std", "0.25"]


# ---------------------------------------------------------------------------------------------------------------------
# The reference: torchvision's ResNet-18 keys, and its forward over them
# ---------------------------------------------------------------------------------------------------------------------


def resnet18_state(widths: list[int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights and BatchNorm statistics (far from their initial values) under torchvision's ResNet-18 keys."""
    g = torch.Generator().manual_seed(seed)
    state = {}

    def conv(name, c_out, c_in, k):
        state[f"{name}.weight"] = torch.randn(c_out, c_in, k, k, generator=g) * (2 / (c_in * k * k)) ** 0.5

    def bn(name, c):
        state[f"{name}.weight"] = 1 + 0.2 * torch.randn(c, generator=g)
        state[f"{name}.bias"] = 0.1 * torch.randn(c, generator=g)
        state[f"{name}.running_mean"] = 0.2 * torch.randn(c, generator=g)
        state[f"{name}.running_var"] = 0.5 + torch.rand(c, generator=g)
        state[f"{name}.num_batches_tracked"] = torch.tensor(1000)

    conv("conv1", widths[0], 3, 3)
    bn("bn1", widths[0])
    c_in = widths[0]
    for stage, width in enumerate(widths):
        for block in range(2):
            p = f"layer{stage + 1}.{block}"
            conv(f"{p}.conv1", width, c_in if block == 0 else width, 3)
            bn(f"{p}.bn1", width)
            conv(f"{p}.conv2", width, width, 3)
            bn(f"{p}.bn2", width)
            if block == 0 and c_in != width:
                conv(f"{p}.downsample.0", width, c_in, 1)
                bn(f"{p}.downsample.1", width)
        c_in = width
    return state


def reference_features(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The authors' teacher over a state dict: 3x3 stem, stride 1, padding 2, no max-pool; basic blocks; global
    average pooling. `(n, 3, H, W)` normalised -> `(n, widths[-1])`."""

    def bn(h, name):
        return F.batch_norm(h, state[f"{name}.running_mean"], state[f"{name}.running_var"], state[f"{name}.weight"],
                            state[f"{name}.bias"], training=False, eps=1e-5)

    h = F.relu(bn(F.conv2d(x, state["conv1.weight"], stride=1, padding=2), "bn1"))
    for stage in range(4):
        for block in range(2):
            p, stride = f"layer{stage + 1}.{block}", 2 if stage > 0 and block == 0 else 1
            out = F.relu(bn(F.conv2d(h, state[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1"))
            out = bn(F.conv2d(out, state[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            if f"{p}.downsample.0.weight" in state:
                h = bn(F.conv2d(h, state[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1")
            h = F.relu(out + h)
    return h.mean((2, 3))


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoint formats
# ---------------------------------------------------------------------------------------------------------------------


def heads(prefix: str, seed: int = 1) -> dict[str, torch.Tensor]:
    """A projector with BatchNorm, as SSL checkpoints keep it beside the backbone."""
    g = torch.Generator().manual_seed(seed)
    return {f"{prefix}0.weight": torch.randn(64, WIDTHS[-1], generator=g), f"{prefix}1.running_mean": torch.zeros(64),
            f"{prefix}1.num_batches_tracked": torch.tensor(5), f"{prefix}3.weight": torch.randn(32, 64, generator=g)}


def save_plain(state, folder):
    torch.save(state, folder / "resnet18.pth")
    return folder / "resnet18.pth"


def save_solo_learn(state, folder):
    """Lightning / solo-learn: under `state_dict`, `backbone.` keys, a projector, BYOL's momentum copy, an epoch."""
    weights = {f"backbone.{k}": v for k, v in state.items()} | heads("projector.")
    weights |= {f"momentum_backbone.{k}": v + 1 for k, v in state.items()}
    torch.save({"state_dict": weights, "epoch": 399}, folder / "barlow_twins_resnet18.ckpt")
    return folder / "barlow_twins_resnet18.ckpt"


def save_ddp(state, folder):
    """DistributedDataParallel's `module.`, under `model`, with the classifier `fc`."""
    weights = {f"module.{k}": v for k, v in state.items()}
    weights |= {"module.fc.weight": torch.randn(10, WIDTHS[-1]), "module.fc.bias": torch.zeros(10)}
    torch.save({"model": weights, "optimizer": {"lr": 0.1}}, folder / "simclr_ddp.pt")
    return folder / "simclr_ddp.pt"


def save_encoder(state, folder):
    """`module.encoder.` (prefixes combined), `fc` inside the encoder, a predictor (BYOL)."""
    weights = {f"module.encoder.{k}": v for k, v in state.items()} | heads("module.predictor.")
    weights |= {"module.encoder.fc.weight": torch.randn(10, WIDTHS[-1])}
    torch.save(weights, folder / "byol.pt")
    return folder / "byol.pt"


def save_safetensors(state, folder):
    """safetensors, without `num_batches_tracked` (it does not change the eval-mode forward)."""
    from safetensors.torch import save_file

    save_file({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, folder / "model.safetensors")
    return folder / "model.safetensors"


FORMATS = {"plain": save_plain, "solo-learn": save_solo_learn, "ddp": save_ddp, "encoder": save_encoder,
           "safetensors": save_safetensors}


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_checkpoint_format_gives_the_reference_features(fmt, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModel

    state = resnet18_state(WIDTHS)
    (tmp_path / "in").mkdir()
    checkpoint = FORMATS[fmt](state, tmp_path / "in")
    out = tmp_path / "teacher"

    main(["import-teacher", str(checkpoint), "--arch", "resnet18", "--stem", "cifar", "--hidden_sizes",
          *map(str, WIDTHS), *NORMALIZE, "--output_dir", str(out)])

    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        features = AutoModel.from_pretrained(out).eval()(pixel_values=x).pooler_output
    assert (features - reference_features(state, x)).abs().max() <= 1e-5

    processor = json.loads((out / "preprocessor_config.json").read_text())
    assert (processor["size"], processor["image_mean"], processor["image_std"]) == (
        {"height": 32, "width": 32}, [0.5] * 3, [0.25] * 3)
    card = ModelCard.load(out / "README.md")
    assert checkpoint.name in card.text and hashlib.sha256(checkpoint.read_bytes()).hexdigest() in card.text
    assert str(tmp_path) not in card.content and "cifar stem: 3x3 convolution, stride 1, padding 2" in card.text


def test_the_full_width_resnet18_is_the_default_and_teaches_as_imported(tmp_path):
    from hf_ssdd.teachers import Teacher

    state = resnet18_state([64, 128, 256, 512], seed=2)
    checkpoint = save_plain(state, tmp_path)
    mean, std = (0.4914, 0.4822, 0.4465), (0.247, 0.243, 0.261)
    cfg = TeacherImportConfig(checkpoint=str(checkpoint), image_mean=list(mean), image_std=list(std),
                              output_dir=str(tmp_path / "teacher"))
    out = import_teacher(cfg)

    teacher = Teacher.from_pretrained(str(out))
    images = torch.rand(4, 3, 32, 32)  # in [0, 1]; the teacher normalises them as recorded
    normalized = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert (teacher.dim, teacher.image_size, teacher.pooling) == (512, 32, "pooler")
    torch.testing.assert_close(teacher(images), reference_features(state, normalized), atol=1e-4, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoints that do not fit
# ---------------------------------------------------------------------------------------------------------------------


def import_error(checkpoint, tmp_path, capsys, *options) -> str:
    """The one line `hf-ssdd import-teacher` prints for `checkpoint`; nothing is written."""
    with pytest.raises(SystemExit) as info:
        main(["import-teacher", str(checkpoint), "--hidden_sizes", *map(str, WIDTHS), *NORMALIZE, *options,
              "--output_dir", str(tmp_path / "teacher")])
    message = str(info.value.code) + capsys.readouterr().err
    assert message.count("\n") <= 1 and "Traceback" not in message
    assert not (tmp_path / "teacher").exists()
    return message


def test_missing_and_unexpected_keys_are_named_and_counted(tmp_path, capsys):
    state = {k: v for k, v in resnet18_state(WIDTHS).items() if not k.startswith("layer4.1.")}
    state["layer4.1.conv1.wieght"] = torch.zeros(1)
    message = import_error(save_plain(state, tmp_path), tmp_path, capsys)
    assert "10 missing (layer4.1.conv1.weight, layer4.1.bn1.weight, layer4.1.bn1.bias, layer4.1.bn1.running_mean, " \
           "layer4.1.bn1.running_var, ... 5 more)" in message
    assert "1 unexpected (layer4.1.conv1.wieght)" in message and "check --arch" in message


def test_a_prefix_it_does_not_know_leaves_every_key_unexpected(tmp_path, capsys):
    state = {f"student.{k}": v for k, v in resnet18_state(WIDTHS).items()}
    message = import_error(save_plain(state, tmp_path), tmp_path, capsys)
    assert "missing (conv1.weight," in message and "unexpected (student.conv1.weight," in message
    assert "more)" in message and "strip the checkpoint's own prefix" in message


def test_the_wrong_stem_is_a_shape_mismatch_naming_the_weight(tmp_path, capsys):
    message = import_error(save_plain(resnet18_state(WIDTHS), tmp_path), tmp_path, capsys, "--stem", "imagenet")
    assert "1 weights of the checkpoint differ in shape" in message
    assert "conv1.weight (16, 3, 3, 3) vs (16, 3, 7, 7)" in message and "check --stem" in message


class RunsCode:
    """A pickle that calls `open(path, "w")` when loaded: a stand-in for any code a checkpoint could carry."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return open, (self.path, "w")


def test_a_pickle_that_needs_code_is_refused_and_runs_none(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    torch.save({"state_dict": resnet18_state(WIDTHS), "hook": RunsCode(str(marker))}, tmp_path / "evil.ckpt")
    message = import_error(tmp_path / "evil.ckpt", tmp_path, capsys)
    assert "'evil.ckpt' needs code to load (io.open), which is not run" in message and "weights_only=False" in message
    assert not marker.exists()


@pytest.mark.parametrize("content, message", [
    (b"not a checkpoint", "'bad.pt' is not a torch.save file"),
    ([1, 2], "'bad.pt' holds no state dict"),
    ({"state_dict": {"conv1.weight": 1}}, "'bad.pt' holds no state dict"),
])
def test_a_file_without_a_state_dict_is_named(content, message, tmp_path, capsys):
    path = tmp_path / "bad.pt"
    path.write_bytes(content) if isinstance(content, bytes) else torch.save(content, path)
    assert message in import_error(path, tmp_path, capsys)


@pytest.mark.parametrize("options, message", [
    ([], "no --image_mean: give the normalisation the checkpoint was trained with"),
    (["--image_mean", "0.5", "0.5"], "image_mean=[0.5, 0.5]: give 1 value or num_channels=3 values"),
    (["--image_mean", "0.5", "--image_std", "0"], "image_std=[0.0] must be positive"),
    (["--arch", "resnet34", "--hidden_sizes", "16", "32"], "hidden_sizes=[16, 32] and depths=[3, 4, 6, 3]"),
])
def test_a_wrong_option_is_one_line_naming_it(options, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["import-teacher", "c.pt", *options, "--output_dir", str(tmp_path / "teacher")])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and message in err


def test_a_missing_file_is_named(tmp_path):
    cfg = TeacherImportConfig(checkpoint=str(tmp_path / "nope.pt"), image_mean=[0.5], image_std=[0.25],
                              output_dir=str(tmp_path / "teacher"))
    with pytest.raises(ConfigError, match="nope.pt' is not a file"):
        import_teacher(cfg)


def test_the_image_size_follows_the_stem():
    assert TeacherImportConfig(checkpoint="c.pt", image_mean=[0.5], image_std=[0.2]).image_size == 32
    cfg = TeacherImportConfig(checkpoint="c.pt", image_mean=[0.5], image_std=[0.2], stem="imagenet", arch="resnet50")
    assert (cfg.image_size, cfg.hidden_sizes) == (224, [256, 512, 1024, 2048])
