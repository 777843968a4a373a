"""Pushing a saved folder to the Hub, against a mocked `HfApi`: what is created, what is uploaded, how failures read."""

from unittest import mock

import pytest
import torch
from huggingface_hub.errors import HfHubHTTPError
from huggingface_hub.utils import filter_repo_objects

from hf_ssdd.config import ConfigError
from hf_ssdd.dataset_card import SNIPPET_PLACEHOLDER
from hf_ssdd.distilled_set import DistilledSet
from hf_ssdd.hub import PushError, push_to_hub

URL = "https://huggingface.co/datasets/me/fmnist-distilled"
UPLOADED = {"README.md", "preview.png", "data/train-0123456789abcdef.parquet"}
LEFT_BEHIND = {"checkpoint-5/model.safetensors", "checkpoint-5/trainer_state.json", "checkpoint-10/rng.json",
               "runs/events.out.tfevents.1.host", "data/train-0123456789abcdef.parquet.tmp",
               "distill_config.yaml"}  # the run's config holds this machine's paths; the card has the hyperparameters


@pytest.fixture
def folder(tmp_path):
    """A distillation output folder: the dataset files plus the run's checkpoints, logs and a half-written file."""
    out = tmp_path / "distilled"
    for name in UPLOADED | LEFT_BEHIND:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(name)
    return out


@pytest.fixture
def hf_api():
    with mock.patch("huggingface_hub.HfApi") as cls:
        cls.return_value.create_repo.return_value = URL
        yield cls


def test_push_creates_the_repo_and_uploads_the_folder(folder, hf_api):
    url = push_to_hub(folder, "me/fmnist-distilled", private=True)

    api = hf_api.return_value
    assert url == URL
    hf_api.assert_called_once_with()
    api.create_repo.assert_called_once_with("me/fmnist-distilled", repo_type="dataset", private=True, exist_ok=True)
    upload = api.upload_folder.call_args.kwargs
    assert (upload["repo_id"], upload["repo_type"], upload["folder_path"]) == ("me/fmnist-distilled", "dataset", folder)


def test_push_uploads_the_dataset_but_not_checkpoints_logs_or_temporary_files(folder, hf_api):
    push_to_hub(folder, "me/fmnist-distilled")

    upload = hf_api.return_value.upload_folder.call_args.kwargs
    files = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()]
    assert set(filter_repo_objects(files, ignore_patterns=upload["ignore_patterns"])) == UPLOADED
    old_files = ["data/train-fedcba9876543210.parquet", "distill_config.yaml", "README.md"]
    assert list(filter_repo_objects(old_files, allow_patterns=upload["delete_patterns"])) == old_files[:2], \
        "the data (and config) of a set pushed before is replaced, not kept beside the new one"


def test_push_of_a_teacher_uses_a_model_repo_and_the_default_token(folder, hf_api):
    push_to_hub(folder, "me/barlow-twins", repo_type="model")

    hf_api.assert_called_once_with()
    assert hf_api.return_value.create_repo.call_args.kwargs["repo_type"] == "model"
    assert hf_api.return_value.upload_folder.call_args.kwargs["repo_type"] == "model"


def network_error():
    """What huggingface_hub's HTTP client raises when the Hub cannot be reached (not an HfHubHTTPError)."""
    return pytest.importorskip("httpx2").ConnectError("Connection reset by peer")


@pytest.mark.parametrize("error", [lambda: OSError("Connection reset by peer"), network_error])
def test_a_failed_push_keeps_the_folder_and_says_how_to_retry(folder, hf_api, error):
    hf_api.return_value.upload_folder.side_effect = error()

    with pytest.raises(PushError) as err:
        push_to_hub(folder, "me/fmnist-distilled", private=True)

    message = str(err.value)
    assert f"hf-ssdd push {folder} me/fmnist-distilled --private" in message
    assert "Connection reset by peer" in message and "intact" in message and "\n" not in message
    assert {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} == UPLOADED | LEFT_BEHIND


def test_an_unauthorised_push_says_to_log_in(folder, hf_api):
    response = mock.Mock(status_code=401, headers={})
    unauthorised = HfHubHTTPError("401 Client Error: Unauthorized\nRequest ID: x", response=response)
    hf_api.return_value.create_repo.side_effect = unauthorised

    with pytest.raises(PushError, match="hf auth login") as err:
        push_to_hub(folder, "me/fmnist-distilled")

    assert "Request ID" not in str(err.value)
    hf_api.return_value.upload_folder.assert_not_called()


def test_push_of_a_missing_folder_is_a_config_error(tmp_path, hf_api):
    with pytest.raises(ConfigError, match="does not exist"):
        push_to_hub(tmp_path / "nowhere", "me/fmnist-distilled")
    hf_api.return_value.create_repo.assert_not_called()


@pytest.fixture
def distilled_folder(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-datasets-cache")
    distilled = DistilledSet(torch.randn(4, 1, 8, 8), torch.randn(4, 3), (0.5,), (0.25,), {"seed": 3})
    return distilled.save(tmp_path / "distilled")


def test_push_of_a_set_names_the_repo_in_the_card_it_uploads(distilled_folder, hf_api):
    uploaded = {}
    hf_api.return_value.upload_folder.side_effect = lambda **kwargs: uploaded.setdefault(
        "card", (kwargs["folder_path"] / "README.md").read_text()
    )
    assert SNIPPET_PLACEHOLDER in (distilled_folder / "README.md").read_text()

    push_to_hub(distilled_folder, "me/fmnist-distilled")

    assert 'load_dataset("me/fmnist-distilled", split="train")' in uploaded["card"]
    assert SNIPPET_PLACEHOLDER not in uploaded["card"]
    assert (distilled_folder / "README.md").read_text() == uploaded["card"], "the local card and the Hub's agree"
    assert DistilledSet.load(distilled_folder).metadata == {"seed": 3, "repo_id": "me/fmnist-distilled"}


def test_push_of_a_model_leaves_its_card_as_it_is(folder, hf_api):
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# A teacher\n")
    push_to_hub(folder, "me/barlow-twins", repo_type="model")
    assert (folder / "README.md").read_text() == "---\nlicense: mit\n---\n# A teacher\n"
