"""Checkpoints: exact round trips of nested state, atomic writes, clear errors for damaged folders."""

import json

import pytest
import torch

from hf_ssdd.checkpoint import (
    list_checkpoints,
    load_checkpoint,
    resolve_checkpoint,
    rotate_checkpoints,
    save_checkpoint,
)
from hf_ssdd.config import ConfigError


def nested_state():
    model = torch.nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    return {
        "step": 7,
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),  # int keys, nested lists
        "pair": (1, torch.arange(3)),
        "rng": torch.get_rng_state(),
        "names": ["a", None, 2.5],
    }


def assert_equal(a, b):
    assert isinstance(b, dict) if isinstance(a, dict) else type(a) is type(b)
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_equal(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_equal(x, y)
    else:
        assert a == b


def test_round_trip_is_exact(tmp_path):
    state = nested_state()
    path = save_checkpoint(state, tmp_path / "checkpoint-7")
    assert sorted(p.name for p in path.iterdir()) == ["state.json", "state.safetensors"]
    assert_equal(load_checkpoint(path), state)
    assert not list(tmp_path.glob("*.tmp"))


def test_optimizer_state_loads_back_into_an_optimizer(tmp_path):
    state = nested_state()
    loaded = load_checkpoint(save_checkpoint(state, tmp_path / "c"))
    opt = torch.optim.SGD(torch.nn.Linear(3, 2).parameters(), lr=1.0, momentum=0.0)
    opt.load_state_dict(loaded["optimizer"])
    assert opt.param_groups[0]["lr"] == 0.1
    assert torch.equal(opt.state[opt.param_groups[0]["params"][0]]["momentum_buffer"],
                       state["optimizer"]["state"][0]["momentum_buffer"])


def test_damaged_checkpoints_are_one_line_errors(tmp_path):
    path = save_checkpoint({"x": torch.ones(3)}, tmp_path / "checkpoint-1")
    (path / "state.safetensors").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="incomplete or corrupt"):
        load_checkpoint(path)
    (path / "state.json").unlink()
    with pytest.raises(ConfigError, match="incomplete or corrupt"):
        load_checkpoint(path)
    with pytest.raises(ConfigError, match="does not exist"):
        load_checkpoint(tmp_path / "checkpoint-99")


def test_a_crash_mid_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint({"x": torch.zeros(2)}, tmp_path / "checkpoint-1")
    monkeypatch.setattr(json, "dumps", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        save_checkpoint({"x": torch.ones(2)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["x"], torch.zeros(2))


def test_latest_and_rotation(tmp_path):
    for step in (10, 2, 30):
        save_checkpoint({"step": step}, tmp_path / f"checkpoint-{step}")
    (tmp_path / "checkpoint-40.tmp").mkdir()  # an interrupted write is never a checkpoint
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-2", "checkpoint-10", "checkpoint-30"]
    assert resolve_checkpoint("latest", tmp_path).name == "checkpoint-30"
    rotate_checkpoints(tmp_path, keep=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["checkpoint-10", "checkpoint-30"]
    rotate_checkpoints(tmp_path, keep=5)
    assert len(list_checkpoints(tmp_path)) == 2
    rotate_checkpoints(tmp_path, keep=0)  # a fresh run over an old output_dir: none of its checkpoints stays
    assert list_checkpoints(tmp_path) == []
    with pytest.raises(ConfigError, match="no checkpoint"):
        resolve_checkpoint("latest", tmp_path / "empty")
