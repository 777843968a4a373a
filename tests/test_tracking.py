"""Experiment tracking: every training stage logs loss, learning rate and step time to the trackers of
`--report_to`, and a tracker that is not there is a one-line error before anything is written."""

import dataclasses

import pytest

from hf_ssdd.cli import STAGES, _load, main
from hf_ssdd.config import ConfigError, trackers
from hf_ssdd.methods import METHODS, config_class

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

TINY_LEARNER = ["--learner_depth", "2", "--learner_width", "4"]


def stage_arguments(stage, fixtures):
    """The smallest command line that runs `stage` on the test fixtures (every training stage has one)."""
    source, teacher, labelled, distilled = fixtures
    return {
        "train-teacher": ["--dataset", source, "--max_steps", "4", "--batch_size", "8", "--hidden_sizes", "4", "8",
                          "--depths", "1", "1", "--projector_dim", "8", "--logging_steps", "2"],
        "distill": ["--dataset", source, "--teacher", teacher, "--num_synthetic", "4", "--max_steps", "4",
                    "--batch_size", "8", "--pool_size", "1", "--pool_steps", "3", "--logging_steps", "2",
                    *TINY_LEARNER],
        "trajectories": ["--dataset", source, "--teacher", teacher, "--num_experts", "1", "--num_epochs", "1",
                         "--batch_size", "12", "--logging_steps", "2", *TINY_LEARNER],
        "pretrain": ["--distilled", distilled, "--num_epochs", "4", "--logging_steps", "2"],
        "transfer": ["--target", labelled, "--max_steps", "4", "--batch_size", "8", "--logging_steps", "2"],
    }[stage]


TRAINING_STAGES = ("train-teacher", "trajectories", "distill", "pretrain", "transfer")


def test_every_stage_but_plan_and_import_trains_and_has_report_to():
    """`plan` only estimates memory and `import-teacher` only converts weights; a new stage that trains joins
    `TRAINING_STAGES` (and so the tests below)."""
    assert set(TRAINING_STAGES) == set(STAGES) - {"plan", "import-teacher"}
    for stage in TRAINING_STAGES:
        configs = [config_class(name) for name in METHODS] if STAGES[stage].by_method else [_load(STAGES[stage].config)]
        for config_cls in configs:
            assert "report_to" in {f.name for f in dataclasses.fields(config_cls)}, (stage, config_cls)


@pytest.fixture
def fixtures(tiny_source, tiny_teacher, tiny_labelled, tiny_distilled):
    return tiny_source, tiny_teacher, tiny_labelled, tiny_distilled


@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_each_stage_logs_loss_learning_rate_and_step_time_to_tensorboard(stage, fixtures, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "out"
    main([stage, *stage_arguments(stage, fixtures), "--output_dir", str(out), "--report_to", "tensorboard"])
    runs = [path.parent for path in (out / "runs").rglob("events.out.tfevents.*")]
    assert runs, f"{stage} wrote no tensorboard events under {out / 'runs'}"
    scalars = {}
    for run in runs:
        events = EventAccumulator(str(run)).Reload()
        scalars.update({tag: events.Scalars(tag) for tag in events.Tags()["scalars"]})
    assert {"loss", "lr", "step_time_s"} <= set(scalars), sorted(scalars)
    assert [event.step for event in scalars["loss"]] == [2, 4]
    assert scalars["lr"][0].value > 0 and all(event.value > 0 for event in scalars["step_time_s"])


@pytest.mark.parametrize("stage", TRAINING_STAGES)
def test_an_unknown_tracker_is_one_line_naming_it_and_what_is_available(stage, fixtures, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([stage, *stage_arguments(stage, fixtures), "--output_dir", str(out), "--report_to", "nosuch"])
    message = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(message.strip().splitlines()) == 1, message
    assert "report_to='nosuch'" in message and "tensorboard" in message
    assert not out.exists(), "nothing is written for a bad argument"


def test_auto_is_tensorboard_when_installed_and_none_is_nothing():
    assert trackers("auto") == ["tensorboard"]  # the test extras install tensorboard
    assert trackers("none") == []
    assert trackers("tensorboard") == ["tensorboard"]
    expected = "wandb is not an installed tracker; choose from auto, none, all, tensorboard"
    with pytest.raises(ConfigError, match=expected):
        trackers("tensorboard,wandb")
