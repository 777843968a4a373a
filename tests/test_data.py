"""The data path: sources, decoding, normalisation, batches and batched augmentation."""

from unittest import mock

import datasets
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hf_ssdd.config import ConfigError
from hf_ssdd.data import (
    FASHION_MNIST_DIR,
    Augmentation,
    Normalization,
    batch_indices,
    describe_source,
    image_column,
    load_source,
    step_generator,
)
from hf_ssdd.image_store import decode_images


@pytest.fixture(scope="module")
def rgb_folder(tmp_path_factory):
    """An imagefolder of 12 RGB 10x10 PNGs in two classes."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for i in range(12):
        (root / f"class{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(root / f"class{i % 2}" / f"{i}.png")
    return root


def test_unknown_dataset_and_missing_column_are_one_line_errors(rgb_folder):
    with pytest.raises(ConfigError, match="no_such_dataset_xyz"):
        load_source("/no/such/folder/no_such_dataset_xyz")
    ds = load_source(str(rgb_folder))
    with pytest.raises(ConfigError, match="image_column='pixels'.*image"):
        image_column(ds, "pixels")
    with pytest.raises(ConfigError, match="no image column"):
        image_column(ds.remove_columns("image"))


@pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="Debian package dataset-fashion-mnist not installed")
def test_builtin_fashion_mnist_reads_the_idx_files():
    ds = load_source("fashion_mnist", split="test")
    images, resolution, channels = decode_images(ds, image_column(ds))
    assert images.shape == (10_000, 1, 28, 28) and (resolution, channels) == (28, 1)
    assert ds.features["label"].names[9] == "Ankle boot"
    assert 0.2 < images.float().mean().item() / 255 < 0.4
    with pytest.raises(ConfigError, match="split='validation'"):
        load_source("fashion_mnist", split="validation")


def test_normalization_measured_and_inverted():
    images = torch.randint(0, 256, (50, 3, 4, 4), dtype=torch.uint8)
    norm = Normalization.measure(images)
    x = norm.normalize(images)
    torch.testing.assert_close(x.mean((0, 2, 3)), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4, rtol=0)
    torch.testing.assert_close(norm.denormalize(x), images.float() / 255)
    given = Normalization.resolve(images, mean=[0.5], std=[0.25])
    assert given == Normalization((0.5,) * 3, (0.25,) * 3)


def test_the_normalisation_of_uint8_images_is_their_float64_moments_over_any_chunking():
    images = torch.randint(0, 256, (103, 3, 5, 5), dtype=torch.uint8)
    pixels = images.double() / 255
    want = pixels.mean((0, 2, 3)).tolist(), pixels.std((0, 2, 3), correction=0).tolist()
    for chunk in (7, 103, 4096):
        norm = Normalization.measure(images, chunk=chunk)
        assert norm.mean == pytest.approx(want[0], rel=1e-12) and norm.std == pytest.approx(want[1], rel=1e-12)
    floats = Normalization.measure(pixels.float())
    assert floats.mean == pytest.approx(want[0], rel=1e-6) and floats.std == pytest.approx(want[1], rel=1e-6)


def test_augmentation_equals_a_naive_crop_and_flip():
    x = torch.randn(16, 2, 9, 9)
    aug = Augmentation.sample(16, padding=3, flip=True, generator=step_generator(0, 5))
    out = aug.apply(x)
    for i in range(16):
        top, left = aug.offsets[i].tolist()
        ref = F.pad(x[i], (3, 3, 3, 3))[:, top : top + 9, left : left + 9]
        assert torch.equal(out[i], ref.flip(-1) if aug.flips[i] else ref)
    assert 0 < aug.flips.sum() < 16 and aug.offsets.min() >= 0 and aug.offsets.max() <= 6


@pytest.mark.parametrize("fill, pixel", [("black", 0.0), ("mean", None)])
def test_a_crop_is_padded_with_black_pixels_as_the_authors_pad_or_with_the_mean_colour(fill, pixel):
    """Padding after normalising with `fill` equals padding the [0, 1] pixels with black, then normalising."""
    normalization = Normalization((0.2, 0.5, 0.7), (0.3, 0.25, 0.1))
    pixels = torch.rand(16, 3, 9, 9)
    aug = Augmentation.sample(16, padding=3, flip=True, generator=step_generator(0, 5))
    out = aug.apply(normalization.normalize(pixels), normalization.crop_fill(fill))
    value = torch.tensor(normalization.mean if pixel is None else (pixel,) * 3).view(1, 3, 1, 1)
    framed = value.expand(16, 3, 15, 15).clone()
    framed[..., 3:12, 3:12] = pixels
    for i in range(16):
        top, left = aug.offsets[i].tolist()
        ref = normalization.normalize(framed[i : i + 1, :, top : top + 9, left : left + 9])
        torch.testing.assert_close(out[i : i + 1], ref.flip(-1) if aug.flips[i] else ref, atol=1e-6, rtol=0)
    border = out[~aug.flips & (aug.offsets[:, 0] == 0)][:, :, 0]  # a top row that is all padding
    expected = normalization.crop_fill(fill).view(1, 3, 1).expand_as(border)
    assert border.numel() and torch.equal(border, expected)


def test_augmentation_of_a_slice_is_the_slice_of_the_augmentation():
    """Why a batch does not depend on the number of processes sharing it."""
    x = torch.randn(8, 1, 6, 6)
    aug = Augmentation.sample(8, padding=2, flip=True, generator=step_generator(1, 2))
    assert torch.equal(aug.apply(x)[4:], aug[4:].apply(x[4:]))


def test_no_padding_no_flip_is_identity():
    x = torch.randn(4, 1, 5, 5)
    assert torch.equal(Augmentation.sample(4, 0, False, step_generator(0, 0)).apply(x), x)


def test_batches_walk_through_epoch_permutations():
    seen = torch.cat([batch_indices(10, 4, step, seed=0) for step in range(5)])  # 2 epochs
    assert sorted(seen[:10].tolist()) == list(range(10)) and sorted(seen[10:].tolist()) == list(range(10))
    assert torch.equal(batch_indices(10, 4, 3, seed=0), batch_indices(10, 4, 3, seed=0))
    assert not torch.equal(batch_indices(1000, 8, 0, seed=0), batch_indices(1000, 8, 0, seed=1))
    assert batch_indices(3, 8, 0, seed=0).shape == (8,)  # batch larger than the data


def test_a_hub_source_out_of_reach_keeps_the_given_revision_and_an_unknown_licence():
    offline = mock.Mock(side_effect=OSError("offline mode is enabled"))
    with mock.patch("huggingface_hub.hf_hub_download", offline):
        assert describe_source("org/images", revision="v1") == (
            {"id": "org/images", "hub_id": "org/images", "revision": "v1"}, None
        )


def test_a_local_source_is_named_by_its_folder_with_the_licence_of_its_card_or_its_dataset_info(tmp_path):
    carded = tmp_path / "carded"
    carded.mkdir()
    (carded / "README.md").write_text("---\nlicense: other\nlicense_name: blob-licence\nlicense_link: LICENSE\n---\n")
    assert describe_source(str(carded)) == (
        {"folder": "carded"},
        {"id": "other", "from": "the card of the local folder `carded`", "name": "blob-licence", "link": "LICENSE"},
    )

    features = datasets.Features({"image": datasets.Array2D((4, 4), "uint8")})
    info = datasets.DatasetInfo(license="CC-BY-4.0", features=features)  # a DatasetDict: dataset_info.json per split
    split = datasets.Dataset.from_dict({"image": np.zeros((2, 4, 4), np.uint8)}, features=features, info=info)
    datasets.DatasetDict({"train": split}).save_to_disk(str(tmp_path / "on-disk"))
    assert describe_source(str(tmp_path / "on-disk") + "/") == (
        {"folder": "on-disk"}, {"id": "cc-by-4.0", "from": "the dataset_info.json of the local folder `on-disk`"}
    )

    (tmp_path / "plain").mkdir()
    assert describe_source(str(tmp_path / "plain")) == ({"folder": "plain"}, None)


def test_a_saved_dataset_dict_joins_splits_with_a_plus_as_load_dataset_does(tmp_path):
    from hf_ssdd.data import load_source

    parts = {name: datasets.Dataset.from_dict({"x": values}) for name, values in (("train", [1, 2]), ("val", [3]))}
    datasets.DatasetDict(parts).save_to_disk(str(tmp_path / "d"))
    assert load_source(str(tmp_path / "d"), split="train+val")["x"] == [1, 2, 3]
    with pytest.raises(ConfigError, match="split='valid' is not in"):
        load_source(str(tmp_path / "d"), split="train+valid")
