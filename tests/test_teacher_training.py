import json
from pathlib import Path

import pytest
import torch
import yaml

from hf_ssdd import data
from hf_ssdd.config import ConfigError, check_output_dir
from hf_ssdd.data import Normalization
from hf_ssdd.parsing import parse_config
from hf_ssdd.teacher_config import TeacherTrainConfig
from hf_ssdd.teacher_training import build_encoder, save_teacher, train_teacher, warmup_cosine

TINY = dict(hidden_sizes=[8, 16], depths=[1, 1], projector_dim=32, batch_size=32, logging_steps=5, learning_rate=3e-3,
            report_to="none")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """64 grey 20x20 images of bright rectangles on a dark background, saved with `save_to_disk`."""
    import datasets

    g = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 40, (64, 20, 20), generator=g, dtype=torch.uint8)
    for image in pixels:
        top, left, height, width = torch.randint(0, 10, (4,), generator=g).tolist()
        image[top : top + height + 6, left : left + width + 6] = torch.randint(150, 256, (1,), generator=g).item()
    features = datasets.Features({"image": datasets.Array2D((20, 20), "uint8")})
    path = tmp_path_factory.mktemp("source") / "rectangles"
    datasets.Dataset.from_dict({"image": pixels.numpy()}, features=features).save_to_disk(str(path))
    return str(path), pixels[:, None]


# ---------------------------------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------------------------------


def test_train_teacher_writes_a_hub_model_that_automodel_loads(source, tmp_path):
    from huggingface_hub import ModelCard
    from transformers import AutoModel

    path, pixels = source
    out = tmp_path / "teacher"
    out.mkdir()
    (out / "stale.txt").write_text("from an older run")
    cfg = TeacherTrainConfig(dataset=path, max_steps=30, output_dir=str(out), overwrite_output_dir=True, **TINY)

    assert train_teacher(cfg) == out

    assert not (out / "stale.txt").exists() and not list(tmp_path.glob("*.tmp"))
    model = AutoModel.from_pretrained(out)
    assert model.config.model_type == "resnet" and model.config.hidden_sizes == [8, 16]
    assert model(pixel_values=torch.randn(2, 1, 20, 20)).pooler_output.flatten(1).shape == (2, 16)

    processor = json.loads((out / "preprocessor_config.json").read_text())
    measured = Normalization.measure(pixels)
    assert processor["size"] == {"height": 20, "width": 20}
    assert processor["image_mean"] == pytest.approx(measured.mean)
    assert processor["image_std"] == pytest.approx(measured.std)

    log = json.loads((out / "train_log.json").read_text())
    assert [entry["step"] for entry in log] == [5, 10, 15, 20, 25, 30]
    assert log[-1]["loss"] < 0.8 * log[0]["loss"]

    card = ModelCard.load(out / "README.md")
    assert {"self-supervised", "barlow-twins", "hf-ssdd"} <= set(card.data.tags)
    assert card.data.library_name == "transformers"
    assert "Barlow Twins" in card.text and f"{log[-1]['loss']:.2f}" in card.text and "30 steps" in card.text
    assert str(tmp_path.parent.parent) not in card.content, "the card names local folders, never a path of this machine"
    assert f"--teacher {out.name} --dataset {Path(path).name}" in card.text

    saved = parse_config(TeacherTrainConfig, ["--config", str(out / "teacher_config.yaml")])
    assert saved == cfg


@pytest.mark.parametrize("arch", ["resnet", "convnext", "resnet18"])
def test_saved_teacher_gives_the_trained_encoders_features(arch, tmp_path):
    from transformers import AutoModel

    from hf_ssdd.teachers import Teacher

    cfg = TeacherTrainConfig(arch=arch, output_dir=str(tmp_path / "teacher"), image_size=24, **TINY)
    torch.manual_seed(0)
    encoder = build_encoder(cfg, channels=1, image_size=24)
    with torch.no_grad():
        for p in encoder.parameters():  # stands in for training: nothing left at its initial value
            p.add_(0.1 * torch.randn_like(p))
    encoder.train()(pixel_values=torch.randn(16, 1, 24, 24) * 2 + 1)  # BatchNorm running statistics move
    encoder.eval()
    normalization = Normalization((0.3,), (0.4,))
    stats = dict(num_images=64, resolution=16, channels=1, image_size=24, steps=3, final_loss=12.5, wall_time_s=1.0,
                 num_processes=1, device="cpu")

    out = save_teacher(encoder, cfg.output_dir, cfg, normalization, stats, [{"step": 3, "loss": 12.5}])

    x = torch.rand(4, 1, 16, 16)  # source images in [0, 1]; the encoder saw them resampled to 24x24
    with torch.no_grad():
        views = torch.nn.functional.interpolate(x, size=(24, 24), mode="bilinear")
        expected = encoder(pixel_values=normalization.normalize(views)).pooler_output.flatten(1)
        loaded = AutoModel.from_pretrained(out).eval()
        features = loaded(pixel_values=normalization.normalize(views)).pooler_output.flatten(1)
    torch.testing.assert_close(features, expected)
    torch.testing.assert_close(Teacher.from_pretrained(str(out))(x), expected)


def test_the_papers_resnet18_with_a_cifar_stem_trains_and_teaches_a_distillation(source, tmp_path):
    from transformers import AutoModel

    from hf_ssdd.cli import main
    from hf_ssdd.methods.krr_st.config import KRRSTConfig
    from hf_ssdd.methods.krr_st.distiller import KRRSTDistiller
    from hf_ssdd.teachers import Teacher

    path, _ = source
    out = tmp_path / "teacher"
    main(["train-teacher", "--dataset", path, "--max_samples", "32", "--arch", "resnet18", "--stem", "cifar",
          "--hidden_sizes", "4", "8", "8", "16", "--max_steps", "2", "--batch_size", "16", "--projector_dim", "16",
          "--report_to", "none", "--output_dir", str(out)])

    model = AutoModel.from_pretrained(out)
    assert model.config.model_type == "hf_ssdd_resnet" and model.config.depths == [2, 2, 2, 2]
    assert (model.conv1.kernel_size, model.conv1.stride, model.conv1.padding) == ((3, 3), (1, 1), (2, 2))
    assert (out / "resnet.py").is_file(), "the model's code travels with it, for trust_remote_code"
    card = (out / "README.md").read_text()
    assert "cifar stem: 3x3 convolution, stride 1, padding 2, no max-pool" in card and "trust_remote_code=True" in card
    assert str(tmp_path) not in card, "a folder not yet written is named by its name too"

    teacher = Teacher.from_pretrained(str(out))
    assert (teacher.pooling, teacher.dim, teacher.image_size) == ("pooler", 16, 20)
    cfg = KRRSTConfig(dataset=path, teacher=str(out), output_dir=str(tmp_path / "distilled"), num_synthetic=4,
                      max_steps=2, batch_size=8, learner_depth=2, learner_width=4, pool_size=2, pool_steps=4,
                      report_to="none")
    distilled = KRRSTDistiller(cfg).train()
    assert distilled.targets.shape == (4, 16) and distilled.targets.isfinite().all()


# ---------------------------------------------------------------------------------------------------------------------
# Output folder and Hub
# ---------------------------------------------------------------------------------------------------------------------


def test_a_stopped_run_resumes_from_latest_to_bitwise_the_uninterrupted_teacher(source, tmp_path, interrupt_at):
    from transformers import AutoModel

    path, _ = source

    def cfg(out, **overrides):
        return TeacherTrainConfig(dataset=path, max_steps=12, save_steps=5, output_dir=str(tmp_path / out),
                                  **{**TINY, **overrides})

    full = train_teacher(cfg("full"))
    interrupt_at(data, "batch_indices", 7)  # Ctrl-C during step 7: it finishes, is checkpointed, the run exits
    with pytest.raises(SystemExit, match="stopped by signal at step 7; resume with --resume_from_checkpoint latest"):
        train_teacher(cfg("stopped"))
    stopped = tmp_path / "stopped"
    assert sorted(p.name for p in stopped.iterdir()) == ["checkpoint-5", "checkpoint-7"]
    with pytest.raises(ConfigError, match="incompatible config.*learning_rate"):
        train_teacher(cfg("stopped", learning_rate=1e-2, resume_from_checkpoint="latest"))

    assert train_teacher(cfg("stopped", resume_from_checkpoint="latest")) == stopped
    assert (stopped / "model.safetensors").read_bytes() == (full / "model.safetensors").read_bytes()
    assert (stopped / "train_log.json").read_text() == (full / "train_log.json").read_text()
    assert sorted(p.name for p in stopped.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-7"]  # the newest 2
    assert sorted(p.name for p in full.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-5"]
    AutoModel.from_pretrained(stopped)


def test_non_empty_output_dir_is_refused_before_any_work(tmp_path, monkeypatch):
    out = tmp_path / "teacher"
    out.mkdir()
    (out / "model.safetensors").write_text("keep me")
    monkeypatch.setattr(data, "load_source", lambda *a, **k: pytest.fail("data was loaded"))
    with pytest.raises(ConfigError, match="overwrite_output_dir"):
        train_teacher(TeacherTrainConfig(output_dir=str(out)))
    assert (out / "model.safetensors").read_text() == "keep me"


def test_output_dir_holding_the_current_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for folder in (".", str(tmp_path.parent)):
        with pytest.raises(ConfigError, match="current folder"):
            check_output_dir(folder, overwrite=True)


class FakeHfApi:
    calls = []
    fail = False

    def __init__(self, token=None):
        pass

    def create_repo(self, repo_id, **kwargs):
        FakeHfApi.calls.append(("create_repo", repo_id, kwargs))
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, **kwargs):
        if FakeHfApi.fail:
            raise OSError("no network")
        FakeHfApi.calls.append(("upload_folder", kwargs["repo_id"], kwargs))


@pytest.mark.parametrize("fail", [False, True])
def test_push_to_hub_uploads_the_teacher_as_a_model_repo(source, tmp_path, monkeypatch, fail):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    monkeypatch.setattr(FakeHfApi, "calls", [])
    monkeypatch.setattr(FakeHfApi, "fail", fail)
    out = tmp_path / "teacher"
    cfg = TeacherTrainConfig(dataset=source[0], max_steps=2, output_dir=str(out), push_to_hub="me/teacher",
                             private=True, **TINY)

    if fail:
        from hf_ssdd.hub import PushError

        with pytest.raises(PushError, match="retry"):
            train_teacher(cfg)
    else:
        train_teacher(cfg)

    create = FakeHfApi.calls[0]
    assert create[:2] == ("create_repo", "me/teacher")
    assert create[2]["repo_type"] == "model" and create[2]["private"] and create[2]["exist_ok"]
    assert (out / "model.safetensors").exists()
    if fail:
        assert len(FakeHfApi.calls) == 1, "the folder is kept and nothing else is uploaded"
    else:
        upload = FakeHfApi.calls[1]
        assert upload[:2] == ("upload_folder", "me/teacher") and str(upload[2]["folder_path"]) == str(out)


# ---------------------------------------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------------------------------------


def test_warmup_cosine_rises_linearly_then_decays_to_zero():
    factor = warmup_cosine(max_steps=110, warmup_steps=10)
    assert [factor(s) for s in (0, 4, 9)] == pytest.approx([0.1, 0.5, 1.0])
    assert factor(10) == 1.0 and factor(60) == pytest.approx(0.5) and factor(110) == pytest.approx(0.0)
    decay = [factor(s) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))


@pytest.mark.parametrize(
    "bad",
    [
        dict(arch="vit"),
        dict(hidden_sizes=[8, 16], depths=[1]),
        dict(hidden_sizes=[8, 0], depths=[1, 1]),
        dict(min_crop_scale=0.0),
        dict(color_jitter=1.0),
        dict(warmup_ratio=1.0),
        dict(max_steps=0),
        dict(projector_dim=-1),
    ],
)
def test_config_rejects_bad_values_naming_the_field(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        TeacherTrainConfig(**bad)


def test_the_default_encoder_is_still_transformers_resnet_32_64_128():
    """The main job publishes its teacher's sha256: the default must build exactly what it built before `arch`."""
    from transformers import ResNetConfig, ResNetModel

    cfg = TeacherTrainConfig()
    assert (cfg.arch, cfg.hidden_sizes, cfg.depths, cfg.stem) == ("resnet", [32, 64, 128], [1, 1, 1], None)
    torch.manual_seed(0)
    built = build_encoder(cfg, channels=1, image_size=28)
    torch.manual_seed(0)
    before = ResNetModel(ResNetConfig(num_channels=1, embedding_size=32, hidden_sizes=[32, 64, 128], depths=[1, 1, 1],
                                      layer_type="basic"))
    assert built.state_dict().keys() == before.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(built.state_dict().values(), before.state_dict().values()))


@pytest.mark.parametrize("given, hidden_sizes, depths, stem", [
    (dict(arch="resnet18"), [64, 128, 256, 512], [2, 2, 2, 2], "cifar"),
    (dict(arch="resnet34", stem="imagenet"), [64, 128, 256, 512], [3, 4, 6, 3], "imagenet"),
    (dict(arch="resnet50"), [256, 512, 1024, 2048], [3, 4, 6, 3], "cifar"),
    (dict(arch="resnet18", hidden_sizes=[16, 32, 64, 128]), [16, 32, 64, 128], [2, 2, 2, 2], "cifar"),
    (dict(arch="resnet18", hidden_sizes=[8, 16], depths=[1, 1]), [8, 16], [1, 1], "cifar"),
    (dict(arch="convnext"), [32, 64, 128], [1, 1, 1], None),
])
def test_widths_depths_and_stem_default_to_the_archs_preset(given, hidden_sizes, depths, stem):
    cfg = TeacherTrainConfig(**given)
    assert (cfg.hidden_sizes, cfg.depths, cfg.stem) == (hidden_sizes, depths, stem)


@pytest.mark.parametrize("bad, message", [
    (dict(stem="cifar"), "stem='cifar' applies to arch resnet18, resnet34 and resnet50, not to arch='resnet'"),
    (dict(arch="convnext", stem_stride=2), "stem_stride=2 applies to arch resnet18"),
    (dict(arch="resnet18", hidden_sizes=[8, 16, 32]), "give both to change the number of stages"),
    (dict(arch="resnet50", hidden_sizes=[8, 16, 32, 66]), "resnet50 has bottleneck blocks"),
    (dict(arch="resnet18", stem_stride=0), "stem_stride=0 must be positive"),
    (dict(arch="resnet18", stem="large"), "stem='large' is not one of cifar, imagenet"),
])
def test_a_wrong_combination_is_one_line_naming_it(bad, message):
    with pytest.raises(ConfigError) as info:
        TeacherTrainConfig(**bad)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_config_round_trips_through_yaml(tmp_path):
    from hf_ssdd.config import save_config

    cfg = TeacherTrainConfig(hidden_sizes=[16, 32], depths=[2, 1], image_size=56, push_to_hub="me/t")
    resnet = TeacherTrainConfig(arch="resnet50", stem="imagenet", stem_padding=1)
    save_config(resnet, tmp_path / "resnet.yaml")
    assert parse_config(TeacherTrainConfig, ["--config", str(tmp_path / "resnet.yaml")]) == resnet
    save_config(cfg, tmp_path / "c.yaml")
    assert yaml.safe_load((tmp_path / "c.yaml").read_text())["hidden_sizes"] == [16, 32]
    assert parse_config(TeacherTrainConfig, ["--config", str(tmp_path / "c.yaml")]) == cfg
