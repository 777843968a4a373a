"""Labelled targets: any folder format reads the same, test splits are found or carved, few-label subsets balance."""

import logging
import types

import numpy as np
import pytest
import torch
from PIL import Image

from hf_ssdd.config import ConfigError
from hf_ssdd.data import FASHION_MNIST_DIR
from hf_ssdd.targets import balanced_subset, few_label_size, load_target, load_target_splits, uniform_subset

NAMES = ["cat", "dog", "emu"]
N = 30  # image i is flat grey 8 * i, of class i % 3: pixels tell which row it was


def _arrays():
    return np.stack([np.full((6, 6), 8 * i, dtype=np.uint8) for i in range(N)])


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """The same 30 labelled 6x6 grey images as a save_to_disk folder, a parquet folder and an imagefolder."""
    import datasets

    root = tmp_path_factory.mktemp("targets")
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=NAMES)})
    ds = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(a) for a in _arrays()], "label": [i % 3 for i in range(N)]}, features=features
    )
    ds.save_to_disk(root / "disk")
    (root / "parquet").mkdir()
    ds.to_parquet(root / "parquet" / "train.parquet")
    for i, array in enumerate(_arrays()):
        (root / "imagefolder" / NAMES[i % 3]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(root / "imagefolder" / NAMES[i % 3] / f"{i}.png")
    return {name: str(root / name) for name in ("disk", "parquet", "imagefolder")}


def _check_rows(target):
    """Each image's pixel value names its row, hence its class."""
    rows = target.images[:, 0, 0, 0].long() // 8
    assert [target.class_names[label] for label in target.labels.tolist()] == [NAMES[i % 3] for i in rows.tolist()]


@pytest.mark.parametrize("kind", ["disk", "parquet", "imagefolder"])
def test_load_target_reads_images_labels_and_class_names_from_every_folder_format(folders, kind):
    target = load_target(folders[kind], split="train")
    assert target.images.shape == (N, 1, 6, 6) and target.images.dtype == torch.uint8
    assert target.labels.dtype == torch.int64 and target.class_names == NAMES and target.num_classes == 3
    _check_rows(target)
    resized = load_target(folders[kind], split="train", resolution=4, channels=3)
    assert resized.images.shape == (N, 3, 4, 4)


def test_plain_label_values_become_sorted_class_names(tmp_path):
    import datasets

    features = datasets.Features({"image": datasets.Array2D((2, 2), "uint8"), "label": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict(
        {"image": np.zeros((4, 2, 2), np.uint8), "label": [10, 3, 7, 3], "species": ["owl", "ant", "owl", "bee"]},
        features=datasets.Features({**features, "species": datasets.Value("string")}),
    )
    ds.save_to_disk(tmp_path / "plain")
    target = load_target(str(tmp_path / "plain"), split="train")
    assert target.class_names == ["3", "7", "10"] and target.labels.tolist() == [2, 0, 1, 0]
    target = load_target(str(tmp_path / "plain"), split="train", label_column="species")
    assert target.class_names == ["ant", "bee", "owl"] and target.labels.tolist() == [2, 0, 2, 1]


def test_mistakes_are_one_line_config_errors(tmp_path, folders):
    import datasets

    ds = datasets.Dataset.from_dict(
        {"image": np.zeros((2, 2, 2), np.uint8), "caption": ["a", "b"]},
        features=datasets.Features({"image": datasets.Array2D((2, 2), "uint8"), "caption": datasets.Value("string")}),
    )
    ds.save_to_disk(tmp_path / "unlabelled")
    with pytest.raises(ConfigError, match=r"no label column found among image, caption; pass --label_column"):
        load_target(str(tmp_path / "unlabelled"), split="train")
    with pytest.raises(ConfigError, match="label_column='kind'.*image, label"):
        load_target(folders["disk"], split="train", label_column="kind")
    ds.remove_columns("image").add_column("label", [0, 1]).save_to_disk(tmp_path / "no_images")
    with pytest.raises(ConfigError, match="no image column"):
        load_target(str(tmp_path / "no_images"), split="train")
    with pytest.raises(ConfigError, match="no_such_target_xyz"):
        load_target("/no/such/folder/no_such_target_xyz", split="train")


@pytest.mark.parametrize("kind", ["disk", "parquet", "imagefolder"])
def test_missing_test_split_is_carved_disjoint_stratified_and_deterministic(folders, kind, caplog):
    with caplog.at_level(logging.INFO, logger="hf_ssdd.targets"):
        train, test = load_target_splits(folders[kind], seed=0)
    assert sum("held out as test" in record.message for record in caplog.records) == 1
    assert (len(train), len(test)) == (24, 6) and train.class_names == test.class_names == NAMES
    assert test.labels.bincount().tolist() == [2, 2, 2]
    _check_rows(train)
    _check_rows(test)
    train_rows, test_rows = set(train.images[:, 0, 0, 0].tolist()), set(test.images[:, 0, 0, 0].tolist())
    assert not train_rows & test_rows and len(train_rows | test_rows) == N

    again = load_target_splits(folders[kind], seed=0)[1]
    other = load_target_splits(folders[kind], seed=1)[1]
    assert torch.equal(again.images, test.images)
    assert not torch.equal(other.images, test.images)


def test_an_existing_test_split_is_used_in_the_train_split_label_space(tmp_path):
    import datasets

    def split(labels, value):
        features = datasets.Features({"image": datasets.Array2D((3, 3), "uint8"), "label": datasets.Value("int64")})
        images = np.full((len(labels), 3, 3), value, np.uint8)
        return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)

    train_labels = [0, 5, 9, 5, 5, 5, 5]  # five of class 5: a fifth of them, one, is carved when asked
    datasets.DatasetDict({"train": split(train_labels, 1), "test": split([9, 5], 2)}).save_to_disk(tmp_path / "dict")
    train, test = load_target_splits(str(tmp_path / "dict"), resolution=None)
    assert train.class_names == test.class_names == ["0", "5", "9"]
    assert test.labels.tolist() == [2, 1] and (test.images == 2).all() and len(train) == 7
    _, carved = load_target_splits(str(tmp_path / "dict"), test_split=None)
    assert (carved.images == 1).all() and carved.labels.tolist() == [1]


def test_digits_builtin_loads_offline_and_has_its_test_split_carved():
    pytest.importorskip("sklearn")
    train, test = load_target_splits("digits", seed=0)
    assert len(train) + len(test) == 1797 and train.num_classes == 10 and train.class_names[3] == "3"
    assert train.images.shape[1:] == (1, 8, 8) and int(train.images.max()) == 255
    assert 0.18 < len(test) / 1797 < 0.22 and set(test.labels.tolist()) == set(range(10))
    with pytest.raises(ConfigError, match="split='test'.*train"):
        load_target("digits", split="test")


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_fashion_mnist_builtin_is_a_target():
    test = load_target("fashion_mnist", split="test")
    assert test.images.shape == (10_000, 1, 28, 28) and test.class_names[9] == "Ankle boot"
    assert test.labels.bincount().tolist() == [1000] * 10


def test_balanced_subset_gives_each_class_its_share():
    labels = torch.tensor([0] * 10 + [1] * 10 + [2] * 10 + [3] * 2)
    index = balanced_subset(labels, 14, seed=0)
    assert len(set(index.tolist())) == 14 and torch.equal(index, index.sort().values)
    assert labels[index].bincount().tolist() == [4, 4, 4, 2]  # 14 // 4 = 3 each, and class 3's missing one spread
    counts = [labels[balanced_subset(labels, 13, seed=seed)].bincount() for seed in range(20)]
    assert all(c.sort().values.tolist() == [2, 3, 4, 4] for c in counts)
    assert {int((c == 3).nonzero()) for c in counts} == {0, 1, 2}  # which classes get the remainder: the seed's call


def test_balanced_subset_is_as_balanced_as_possible_for_every_n():
    labels = torch.tensor([0] * 7 + [1] * 3 + [2] * 5 + [3] * 1)
    sizes = labels.bincount()
    for n in range(4, len(labels) + 1):
        counts = labels[balanced_subset(labels, n, seed=n)].bincount(minlength=4)
        assert counts.sum() == n and (counts <= sizes).all()
        not_full = counts[counts < sizes]
        if len(not_full):
            assert counts.max() - not_full.min() <= 1


def test_balanced_subset_is_deterministic_per_seed_and_checks_n():
    labels = torch.arange(100) % 10
    assert torch.equal(balanced_subset(labels, 20, seed=3), balanced_subset(labels, 20, seed=3))
    assert not torch.equal(balanced_subset(labels, 20, seed=3), balanced_subset(labels, 20, seed=4))
    with pytest.raises(ConfigError, match="at least one image per class"):
        balanced_subset(labels, 9, seed=0)
    with pytest.raises(ConfigError, match="n=101"):
        balanced_subset(labels, 101, seed=0)


def test_uniform_subset_ignores_the_classes_as_mkdt_does():
    labels = torch.tensor([0] * 90 + [1] * 10)
    index = uniform_subset(labels, 10, seed=0)
    assert len(set(index.tolist())) == 10 and torch.equal(index, index.sort().values)
    minority = [int((labels[uniform_subset(labels, 10, seed=seed)] == 1).sum()) for seed in range(200)]
    assert 0 in minority and max(minority) >= 3  # a rare class is sometimes missed, sometimes over-drawn
    assert abs(sum(minority) / len(minority) - 1.0) < 0.25  # in expectation its share: 10 x 10%
    assert torch.equal(uniform_subset(labels, 10, seed=3), uniform_subset(labels, 10, seed=3))
    assert not torch.equal(uniform_subset(labels, 10, seed=3), uniform_subset(labels, 10, seed=4))
    with pytest.raises(ConfigError, match="n=101"):
        uniform_subset(labels, 101, seed=0)


@pytest.mark.parametrize("given, size", [({}, None), ({"max_train_samples": 7}, 7), ({"train_fraction": 0.01}, 600),
                                         ({"train_fraction": 0.05}, 3000), ({"train_fraction": 1e-6}, 1)])
def test_the_few_label_size_is_a_count_or_a_fraction_rounded_down(given, size):
    cfg = types.SimpleNamespace(**{"max_train_samples": None, "train_fraction": None, **given})
    assert few_label_size(cfg, 60_000) == size


def test_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match="pip install scikit-learn"):
        load_target("digits", split="train")
