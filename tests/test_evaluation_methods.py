"""`evaluation.methods`: the source a distilled set records becomes the `SourceConfig` that `load_images` reads."""

from hf_ssdd.evaluation.methods import source_config

METADATA = {
    "source": {"id": "org/data", "config": "c", "revision": "abc", "split": "train", "image_column": "img"},
    "resolution": 12, "channels": 1, "hyperparameters": {"seed": 0, "max_samples": 40},
}


def test_the_recorded_source_is_read_back_with_its_split_size_and_format():
    source = source_config(METADATA)
    assert (source.dataset, source.dataset_config, source.dataset_revision) == ("org/data", "c", "abc")
    assert (source.split, source.image_column, source.max_samples) == ("train", "img", 40)
    assert (source.resolution, source.channels) == (12, 1)


def test_the_held_out_split_replaces_the_split_and_the_sample_count():
    source = source_config(METADATA, split="test", max_samples=8)
    assert (source.split, source.max_samples, source.dataset) == ("test", 8, "org/data")
    assert source_config({**METADATA, "hyperparameters": {"seed": 0}}).max_samples is None
