"""The teacher-view cache: the targets it serves are the teacher's on the same views, and it is computed once."""

import pytest
import torch

from hf_ssdd.data import Normalization, image_column, load_source
from hf_ssdd.image_store import decode_images
from hf_ssdd.teacher_cache import TeacherCache, view_augmentations
from hf_ssdd.teachers import Teacher


@pytest.fixture(scope="module")
def setup(tiny_source, tiny_teacher):
    ds = load_source(tiny_source)
    images, _, _ = decode_images(ds, image_column(ds))
    return Teacher.from_pretrained(tiny_teacher), images, Normalization.resolve(images)


def build(setup, cache_dir, **overrides):
    teacher, images, normalization = setup
    kwargs = dict(num_views=3, padding=2, flip=True, seed=0, cache_dir=cache_dir, chunk_size=20)
    return TeacherCache.build(teacher, images, normalization, **{**kwargs, **overrides})


@pytest.mark.parametrize("fill", ["black", "mean"])
def test_cached_targets_are_the_teacher_on_the_view_the_learner_gets(setup, tmp_path, fill):
    teacher, images, normalization = setup
    cache = build(setup, tmp_path, fill=fill)
    assert cache.features.shape == (3, 48, teacher.dim)
    g = torch.Generator().manual_seed(0)
    indices, view_ids = torch.randint(48, (10,), generator=g), torch.randint(3, (10,), generator=g)
    views, targets = cache.lookup(indices, view_ids)
    x = views.apply(normalization.normalize(images[indices]), normalization.crop_fill(fill))
    torch.testing.assert_close(targets, teacher(normalization.denormalize(x).clamp(0, 1)), atol=1e-5, rtol=1e-5)
    assert len({tuple(o) for o in views.offsets.tolist()}) > 1, "views differ between images"


def test_a_second_run_reads_the_cache_without_running_the_teacher(setup, tmp_path, monkeypatch):
    first = build(setup, tmp_path)
    monkeypatch.setattr(Teacher, "forward", lambda *a: pytest.fail("the teacher ran again"))
    again = build(setup, tmp_path)
    assert again.path == first.path
    assert (again.features == first.features).all()
    assert not list(tmp_path.glob("*.tmp")), "no half-written cache is left behind"


def test_other_inputs_get_their_own_cache(setup, tmp_path):
    changes = ({}, {"seed": 1}, {"num_views": 2}, {"flip": False}, {"fill": "mean"})
    assert len({build(setup, tmp_path, **change).path for change in changes}) == len(changes)


def test_a_teacher_that_preprocesses_otherwise_gets_its_own_cache(setup, tmp_path):
    """Same weights, same size and normalisation, another resize filter: other targets, so another cache."""
    import copy
    import dataclasses

    teacher, images, normalization = setup
    other = copy.copy(teacher)
    other.processing = dataclasses.replace(teacher.processing, resample="nearest")
    assert build(setup, tmp_path).path != build((other, images, normalization), tmp_path).path


def test_view_v_is_drawn_from_the_seed_and_v_alone():
    """Growing V keeps the first views: caches of 2 and 5 views agree on views 0 and 1."""
    small, large = view_augmentations(48, 2, 4, True, seed=0), view_augmentations(48, 5, 4, True, seed=0)
    assert torch.equal(small.offsets, large.offsets[:2]) and torch.equal(small.flips, large.flips[:2])
    assert small.offsets.shape == (2, 48, 2) and int(small.offsets.max()) <= 8
