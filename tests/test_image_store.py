"""`image_store`: a source decoded once per node into one mapped file, bitwise what PIL gives one image at a time."""

import hashlib
import json
import os
import subprocess
import sys
import warnings

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from hf_ssdd import image_store
from hf_ssdd.config import ConfigError, SourceConfig
from hf_ssdd.data import convert_images, image_column, load_source
from hf_ssdd.image_store import decode_images, decode_into, load_images


@pytest.fixture(scope="module")
def png_source(tmp_path_factory):
    """A parquet folder of PNGs, `train` (30) and `test` (10): 12x12 RGB, every 4th grey, every 5th 16x16."""
    root = tmp_path_factory.mktemp("png")
    rng = np.random.default_rng(0)
    for split, n in (("train", 30), ("test", 10)):
        images = []
        for i in range(n):
            side = 16 if i % 5 == 4 else 12
            pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
            images.append(Image.fromarray(pixels).convert("L" if i % 4 == 3 else "RGB"))
        features = datasets.Features({"image": datasets.Image()})
        datasets.Dataset.from_dict({"image": images}, features=features).to_parquet(root / f"{split}.parquet")
    return str(root)


def pil_reference(dataset: str, resolution: int, channels: int, split: str = "train") -> torch.Tensor:
    """What hf-ssdd decoded before the store: one PIL image at a time, bicubic resize, `(N, C, R, R)` uint8."""
    ds = load_source(dataset, split=split)
    out = []
    for row in ds:
        image = row["image"].convert("L" if channels == 1 else "RGB")
        if image.size != (resolution, resolution):
            image = image.resize((resolution, resolution), Image.BICUBIC)
        array = np.asarray(image)
        out.append(array[None] if channels == 1 else array.transpose(2, 0, 1))
    return torch.from_numpy(np.stack(out))


@pytest.fixture
def decodes(monkeypatch):
    """The row ranges this process decodes, as `(start, stop)`."""
    calls, decode = [], image_store._decode_rows
    monkeypatch.setattr(image_store, "_decode_rows", lambda *args: calls.append(args[:2]) or decode(*args))
    return calls


@pytest.mark.parametrize("resolution, channels", [(None, None), (8, 1), (16, 3)])
def test_the_store_holds_bitwise_what_pil_gives_one_image_at_a_time(png_source, tmp_path, resolution, channels):
    source = SourceConfig(dataset=png_source, resolution=resolution, channels=channels)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable"
        got = load_images(source, cache_dir=tmp_path)
    assert (got.resolution, got.channels) == (resolution or 12, channels or 3)
    assert torch.equal(got.images, pil_reference(png_source, got.resolution, got.channels))
    [path] = tmp_path.glob("*.npy")
    assert mapped_file(got.images.data_ptr()) == str(path)


def test_worker_processes_decode_what_one_process_decodes(png_source):
    ds = load_source(png_source)
    one, two = np.zeros((2, 30, 3, 12, 12), dtype=np.uint8)
    decode_into(one, ds, "image", 12, 3, workers=1, chunk=7)
    decode_into(two, ds, "image", 12, 3, workers=2, chunk=7)
    assert np.array_equal(one, two) and np.array_equal(one, pil_reference(png_source, 12, 3).numpy())


def test_a_second_load_decodes_nothing(png_source, tmp_path, decodes):
    first = load_images(SourceConfig(dataset=png_source), cache_dir=tmp_path)
    assert decodes == [(0, 30)]
    second = load_images(SourceConfig(dataset=png_source), cache_dir=tmp_path)
    assert decodes == [(0, 30)] and torch.equal(first.images, second.images)


@pytest.mark.parametrize("damage", ["truncate the file", "other inputs in the sidecar", "no sidecar"])
def test_a_damaged_or_mismatched_file_is_rebuilt(png_source, tmp_path, decodes, damage):
    load_images(SourceConfig(dataset=png_source), cache_dir=tmp_path)
    [path] = tmp_path.glob("*.npy")
    sidecar = path.with_suffix(".json")
    if damage == "truncate the file":
        os.truncate(path, path.stat().st_size // 2)
    elif damage == "other inputs in the sidecar":
        sidecar.write_text(json.dumps({**json.loads(sidecar.read_text()), "fingerprint": "another dataset"}))
    else:
        sidecar.unlink()
    got = load_images(SourceConfig(dataset=png_source), cache_dir=tmp_path)
    assert decodes == [(0, 30), (0, 30)]
    assert torch.equal(got.images, pil_reference(png_source, 12, 3))
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix != ".lock") == sorted([path.name, sidecar.name])


def test_files_differ_by_split_resolution_and_channels_and_rows(png_source, tmp_path):
    for split, resolution, channels, rows in [("train", None, None, None), ("test", None, None, None),
                                              ("train", 8, None, None), ("train", None, 1, None), ("train", 12, 3, 1),
                                              ("train", 12, 3, None)]:
        load_images(SourceConfig(dataset=png_source, resolution=resolution, channels=channels), split, rows, tmp_path)
    assert len(list(tmp_path.glob("*.npy"))) == 5
    test = load_images(SourceConfig(dataset=png_source), "test", cache_dir=tmp_path)
    assert torch.equal(test.images, pil_reference(png_source, 12, 3, "test"))


def mapped_file(address: int) -> str:
    """The file this process maps at `address` ("" for anonymous memory), from /proc/self/maps."""
    for line in open("/proc/self/maps"):
        fields = line.split(maxsplit=5)
        start, end = (int(a, 16) for a in fields[0].split("-"))
        if start <= address < end:
            return fields[5].strip() if len(fields) == 6 else ""
    return ""


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc")
def test_arrays_in_their_own_format_are_viewed_in_arrow_memory(tiny_source, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. torch's "The given NumPy array is not writable"
        got = load_images(SourceConfig(dataset=tiny_source), cache_dir=tmp_path)
    ds = load_source(tiny_source)
    assert mapped_file(got.images.data_ptr()) == ds.cache_files[0]["filename"]  # the saved .arrow file, not a copy
    assert torch.equal(got.images[:, 0], torch.from_numpy(np.stack(ds.with_format("numpy")["image"])))
    assert not list(tmp_path.iterdir())


def test_arrays_in_another_format_are_converted_into_the_store_as_before(tiny_source, tmp_path):
    got = load_images(SourceConfig(dataset=tiny_source, resolution=8, channels=3), cache_dir=tmp_path)
    arrays = torch.from_numpy(np.stack(load_source(tiny_source).with_format("numpy")["image"]))  # (48, 12, 12)
    assert torch.equal(got.images, convert_images(arrays[:, None], 3, 8))  # all at once, as before the store
    assert len(list(tmp_path.glob("*.npy"))) == 1


TWO_PROCESSES = """
import hashlib, json, os, sys
from hf_ssdd import image_store
from hf_ssdd.config import ConfigError, SourceConfig

calls, decode = [], image_store._decode_rows
image_store._decode_rows = lambda *args: calls.append(args[:2]) or decode(*args)
got = image_store.load_images(SourceConfig(dataset=sys.argv[1]), cache_dir=sys.argv[2])
digest = hashlib.sha256(got.images.numpy().tobytes()).hexdigest()
with open(os.path.join(sys.argv[3], os.environ["RANK"] + ".json"), "w") as f:
    json.dump({"decoded": len(calls), "sha256": digest}, f)
"""


def test_two_processes_decode_once_and_read_the_same_bytes(png_source, tmp_path):
    (tmp_path / "load.py").write_text(TWO_PROCESSES)
    (tmp_path / "out").mkdir()
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    args = [str(tmp_path / "load.py"), png_source, str(tmp_path / "cache"), str(tmp_path / "out")]
    proc = subprocess.run(launcher + args, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / "out" / f"{rank}.json").read_text()) for rank in (0, 1)]
    assert sum(r["decoded"] for r in results) == 1  # one process decoded the one chunk; the other mapped its file
    want = hashlib.sha256(pil_reference(png_source, 12, 3).numpy().tobytes()).hexdigest()
    assert [r["sha256"] for r in results] == [want, want]


def test_decode_images_reads_imagefolder_save_to_disk_and_parquet(tmp_path):
    arrays = np.arange(4 * 6 * 6, dtype=np.uint8).reshape(4, 6, 6)
    features = datasets.Features({"img": datasets.Image()})
    ds = datasets.Dataset.from_dict({"img": [Image.fromarray(a) for a in arrays]}, features=features)
    ds.save_to_disk(tmp_path / "disk")
    (tmp_path / "parquet").mkdir()
    ds.to_parquet(tmp_path / "parquet" / "train.parquet")
    for i, a in enumerate(arrays):
        (tmp_path / "folder" / f"class{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(a).save(tmp_path / "folder" / f"class{i % 2}" / f"{i}.png")
    for path in (tmp_path / "disk", tmp_path / "parquet", tmp_path / "folder"):
        loaded = load_source(str(path))
        images, resolution, channels = decode_images(loaded, image_column(loaded))
        assert (images.dtype, resolution, channels) == (torch.uint8, 6, 1)
        assert sorted(images[:, 0].flatten(1).tolist()) == sorted(torch.from_numpy(arrays).flatten(1).tolist())


def test_load_images_reads_a_source_config_its_split_its_first_rows(tiny_labelled):
    train = load_images(SourceConfig(dataset=tiny_labelled, max_samples=40))
    assert train.images.shape == (40, 1, 12, 12) and train.images.dtype == torch.uint8
    assert (train.resolution, train.channels, train.column, train.num_rows) == (12, 1, "image", 40)
    test = load_images(SourceConfig(dataset=tiny_labelled, resolution=8, channels=3), split="test")
    assert test.images.shape == (32, 3, 8, 8) and test.num_rows == 32
    first = load_images(SourceConfig(dataset=tiny_labelled, max_samples=40), rows=1)
    assert first.num_rows == 40 and torch.equal(first.images, train.images[:1])


def test_photographs_of_any_shape_are_resized_to_a_given_resolution_and_refused_without_one():
    photos = datasets.Dataset.from_dict({"image": [Image.new("RGB", (40, 30), (255, 0, 0))] * 2},
                                        features=datasets.Features({"image": datasets.Image()}))
    images, resolution, channels = decode_images(photos, "image", resolution=16)
    assert images.shape == (2, 3, 16, 16) and (resolution, channels) == (16, 3) and images[:, 0].min() == 255
    with pytest.raises(ConfigError, match="images are 40x30, not square; set --resolution"):
        decode_images(photos, "image")
