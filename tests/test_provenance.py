"""Provenance: inputs named so that a reader on any machine finds them, never by a path of this machine."""

from hf_ssdd.provenance import (
    HUB_LICENSES, card_license, public_metadata, public_name, snapshot_commit, where, with_local_paths,
)


def test_a_local_path_is_named_by_its_folder_and_anything_else_as_it_is(tmp_path):
    (tmp_path / "vit").mkdir()
    assert public_name(str(tmp_path / "vit") + "/") == "vit"
    assert public_name("org/name") == "org/name" and public_name("fashion_mnist") == "fashion_mnist"
    assert public_name(None) is None


def test_where_names_a_hub_input_by_id_and_revision_and_a_local_one_by_folder_and_hash():
    assert where({"id": "org/name", "hub_id": "org/name", "revision": "abc"}) == "`org/name`, revision `abc`"
    assert where({"id": "fashion_mnist", "hub_id": "zalando-datasets/fashion_mnist"}) == (
        "`fashion_mnist` (on the Hub: `zalando-datasets/fashion_mnist`)"
    )
    assert where({"folder": "vit", "id": "/home/me/vit", "sha256": {"model.safetensors": "ab"}}) == (
        "local folder `vit`, `model.safetensors` sha256 `ab`"
    )
    assert where({}) is None


def test_a_card_licence_is_read_with_its_name_and_link_and_unknown_is_none():
    card = {"license": "other", "license_name": "blob-licence", "license_link": "LICENSE"}
    assert card_license(card, "x") == {"id": "other", "from": "x", "name": "blob-licence", "link": "LICENSE"}
    assert card_license({"license": "unknown"}, "x") is None and card_license(None, "x") is None
    assert {"mit", "apache-2.0", "cc-by-4.0", "other", "unknown"} <= set(HUB_LICENSES)


def test_local_paths_are_restored_from_the_run_config_and_never_shown(tmp_path):
    metadata = {"source": {"folder": "blobs"}, "teacher": {"id": "org/vit"}}
    (tmp_path / "distill_config.yaml").write_text("dataset: /data/blobs\nteacher: org/vit\n")

    restored = with_local_paths(metadata, tmp_path / "distill_config.yaml")
    assert restored["source"] == {"folder": "blobs", "id": "/data/blobs"} and restored["teacher"] == {"id": "org/vit"}
    assert public_metadata(restored) == {"source": {"folder": "blobs"}, "teacher": {"id": "org/vit"}}
    assert with_local_paths({"source": {"folder": "b"}}, tmp_path / "absent.yaml") == {"source": {"folder": "b"}}


def test_an_mkdt_sets_trajectories_are_found_again_and_shown_by_folder_name(tmp_path):
    (tmp_path / "runs" / "experts").mkdir(parents=True)
    (tmp_path / "distill_config.yaml").write_text(f"trajectories: {tmp_path / 'runs' / 'experts'}\n")
    metadata = {"hyperparameters": {"trajectories": "experts", "seed": 0}}
    restored = with_local_paths(metadata, tmp_path / "distill_config.yaml")
    assert restored["hyperparameters"]["trajectories"] == str(tmp_path / "runs" / "experts")
    assert public_metadata(restored) == {"hyperparameters": {"trajectories": "experts", "seed": 0}}


def test_snapshot_commit_is_the_hub_cache_folder_of_a_file_and_nothing_elsewhere(tmp_path):
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert snapshot_commit(tmp_path / "snapshots" / commit / "README.md") == commit
    assert snapshot_commit(tmp_path / "my-teacher" / "config.json") is None
    assert snapshot_commit(None) is None
