"""Configuration: the paper's defaults, choices declared once on the field, field roles, help for every option."""

import dataclasses

import pytest

from hf_ssdd.config import ConfigError, fixed_on_resume, hyperparameters
from hf_ssdd.pretrain_config import PretrainConfig
from hf_ssdd.teacher_config import TeacherImportConfig, TeacherTrainConfig
from hf_ssdd.transfer_config import TransferConfig
from hf_ssdd.methods.krr_st.config import KRRSTConfig
from hf_ssdd.methods.mkdt.config import MKDTConfig
from hf_ssdd.trajectories_config import TrajectoriesConfig

CONFIGS = [KRRSTConfig, MKDTConfig, TrajectoriesConfig, TeacherTrainConfig, TeacherImportConfig, PretrainConfig,
           TransferConfig]
REQUIRED = {  # what a config cannot be built without
    MKDTConfig: {"trajectories": "experts"},
    TransferConfig: {"target": "digits"},
    TeacherImportConfig: {"checkpoint": "c.pt", "image_mean": [0.5], "image_std": [0.25]},
}
CONTEXT = {"stem": {"arch": "resnet18"}, "init": {"trajectories": "experts"}}  # a field that needs another


def test_defaults_are_the_papers_protocol():
    cfg = KRRSTConfig()
    assert (cfg.num_synthetic, cfg.batch_size, cfg.learning_rate, cfg.max_steps) == (1000, 1024, 1e-4, 160_000)
    assert (cfg.pool_size, cfg.pool_steps, cfg.pool_learning_rate, cfg.pool_momentum) == (10, 1000, 0.1, 0.9)
    assert (cfg.pool_weight_decay, cfg.ridge, cfg.final_lr_ratio, cfg.crop_padding) == (1e-3, 1e-6, 1e-3, 4)
    assert (cfg.learner_depth, cfg.learner_width, cfg.learner_norm, cfg.learner_pooling) == (3, 128, "batch", "avg")


@pytest.mark.parametrize("config_cls", CONFIGS, ids=lambda c: c.__name__)
def test_choices_are_declared_on_the_field_and_also_checked_when_built_in_python(config_cls):
    for f in dataclasses.fields(config_cls):
        for choice in f.metadata.get("choices", ()):
            if f.name == "method" and choice != config_cls.method_name():
                continue  # a method's config takes its own method only (tests/methods/test_registry.py)
            config_cls(**{**REQUIRED.get(config_cls, {}), **CONTEXT.get(f.name, {}), f.name: choice})
        if "choices" in f.metadata:
            with pytest.raises(ConfigError, match=f"{f.name}='not-a-choice' is not one of"):
                config_cls(**REQUIRED.get(config_cls, {}), **{f.name: "not-a-choice"})


@pytest.mark.parametrize("config_cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_field_has_help(config_cls):
    assert all(f.metadata.get("help") for f in dataclasses.fields(config_cls))


def test_field_roles_say_what_a_distilled_set_records_and_what_a_resume_may_change():
    cfg = KRRSTConfig()
    outputs = {"output_dir", "overwrite_output_dir", "resume_from_checkpoint", "push_to_hub", "private",
               "teacher_cache_dir", "license"}
    run_only = {"max_steps", "save_steps", "save_total_limit", "logging_steps", "report_to", "feature_chunk_size",
                "krr_solver", "max_memory_gb", "shard_synthetic"}
    every = {f.name for f in dataclasses.fields(cfg)}
    assert set(hyperparameters(cfg)) == every - outputs
    assert set(fixed_on_resume(cfg)) == every - outputs - run_only
    assert {"num_synthetic", "learning_rate", "teacher", "seed"} <= set(fixed_on_resume(cfg))


def test_license_must_be_a_hub_licence_id():
    assert KRRSTConfig(license="cc-by-nc-4.0").license == "cc-by-nc-4.0"
    with pytest.raises(ConfigError, match="license='MIT' is not a Hub licence id"):
        KRRSTConfig(license="MIT")
