"""Start-up config validation: every shipped config passes; each bad value is named with its allowed range."""

import math
import pathlib

import ml_collections.config_flags.config_flags as config_flags_module
import pytest

from slnl_jax import config_checks

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _load(name: str, argument: str | None = None):
  module = config_flags_module._LoadConfigModule(f"cfg_{name}", str(REPO_ROOT / "configs" / f"{name}.py"))
  return module.get_config(*([argument] if argument else []))


@pytest.mark.parametrize(
  ("name", "argument"),
  [
    ("default", None),
    ("demo", None),
    ("msr_action3d", None),
    ("msr_action3d_cpu", None),
    ("ntu60_xsub", None),
    ("ntu60_xview", None),
    ("ntu120_xsub", None),
    ("ntu120_xset", None),
    ("kinetics", None),
    ("nw_ucla", None),
    ("nw_ucla", "paper"),
    ("nw_ucla_cpu", None),
    ("ablations", "msr_action3d,fa_none"),
  ],
)
def test_shipped_configs_are_valid(name, argument):
  config_checks.validate(_load(name, argument))


def test_nw_ucla_paper_size_is_the_papers_network():
  # Sec. 4.1: K = 10 coordinate systems, six blocks of 64-64-128-128-256-256 channels; M1 = 3 as for NTU cross-view.
  paper = _load("nw_ucla", "paper").model
  assert (paper.num_systems, tuple(paper.channels), paper.num_slnl_blocks) == (10, (64, 64, 128, 128, 256, 256), 3)
  with pytest.raises(ValueError, match="unknown N-UCLA size 'big'"):
    _load("nw_ucla", "big")


@pytest.mark.parametrize(
  ("key", "value", "allowed"),
  [
    ("train.batch_size", -4, "an integer >= 1"),
    ("train.batch_size", 0, "an integer >= 1"),
    ("train.eval_batch_size", 0, "an integer >= 1"),
    ("dataset.num_frames", 0, "an integer >= 4 (the model max-pools 2 times by 2)"),  # 6 blocks, pool every 2
    ("dataset.num_frames", 3, "an integer >= 4"),
    ("model.num_joints_out", 3, "an integer >= 4"),
    ("train.learning_rate", math.nan, "a number in (0, inf)"),
    ("train.learning_rate", 0.0, "a number in (0, inf)"),
    ("train.lr_decay", 1.5, "a number in (0, 1]"),
    ("train.ema_decay", 1.0, "a number in [0, 1)"),
    ("train.mixup_alpha", -0.2, "a number >= 0 (0: off)"),
    ("train.optimizer", "adamw", "one of ('adam', 'sgd')"),
    ("dataset.eval_heads", "mean", "one of ('concat', 'all')"),
    ("train.momentum", 1.0, "a number in [0, 1)"),
    ("train.warmup_epochs", -1, "an integer >= 0"),
    ("dataset.train_crop_min", 0.0, "a number in (0, 1]"),
    ("dataset.eval_clips", 0, "an integer >= 1"),
    ("dataset.eval_turns", 0, "an integer >= 1"),
    ("dataset.eval_turns", 3, "1 when training clips are not turned"),  # the default train_rotation_deg is 0
    ("model.dropout_rate", 1.0, "a number in [0, 1)"),
    ("train.max_steps", 0, "an integer >= 1 or -1"),
    ("train.checkpoint_every_steps", 0, "an integer >= 1"),
    ("dataset.center_channels", 4, "an integer in [0, 3]"),
    ("dataset.train_rotation_deg", -10.0, "a number in [0, 180]"),
    ("dataset.train_tilt_deg", 181.0, "a number in [0, 180]"),
    ("dataset.train_scale_range", 1.0, "a number in [0, 1)"),
    ("dataset.train_shear", -0.1, "a number in [0, 1)"),
    ("loss.label_smoothing", 1.0, "a number in [0, 1)"),
    ("dataset.center_joint", 25, "-1 or a joint in [0, 25)"),
    ("dataset.center_joint", -2, "-1 or a joint in [0, 25)"),
    ("dataset.align_joints", (4, 8, 12), "() or (left, right, ...) pairs of joints in [0, 25)"),
    ("dataset.align_joints", (4, 25), "() or (left, right, ...) pairs of joints in [0, 25)"),
    ("dataset.train_mirror_pairs", (4, 8, 5), "() or (left, right, ...) pairs of distinct joints in [0, 25)"),
    ("dataset.train_mirror_pairs", (4, 8, 8, 9), "() or (left, right, ...) pairs of distinct joints in [0, 25)"),
    ("model.frequency_attention", "amplitud", "one of ('none', 'amplitude'"),
    ("model.channels", (), "a non-empty tuple"),
  ],
)
def test_bad_values_name_key_and_range(key, value, allowed):
  config = _load("default")
  section, field = key.split(".")
  config[section][field] = value
  with pytest.raises(config_checks.ConfigError) as e:
    config_checks.validate(config)
  message = str(e.value)
  assert message.startswith(f"config.{key}={value!r}: must be {allowed}"), message
  assert "\n" not in message


@pytest.mark.parametrize(
  ("key", "value"),
  [
    ("center_joint", 0),
    ("minmax_normalize", True),
    ("train_mirror_pairs", (4, 8)),
    ("align_joints", (4, 8)),
    ("train_tilt_deg", 10.0),
    ("train_scale_range", 0.1),
    ("train_shear", 0.1),
  ],
)
def test_view_settings_need_xyz(key, value):
  config = _load("default")
  config.dataset.num_channels = 2
  config.dataset[key] = value
  with pytest.raises(config_checks.ConfigError, match=rf"config.dataset.{key}=.*: must be off for data of fewer"):
    config_checks.validate(config)


def test_isotropic_minmax_needs_minmax():
  config = _load("default")
  config.dataset.minmax_isotropic = True
  with pytest.raises(config_checks.ConfigError, match=r"config.dataset.minmax_isotropic=True: must be False unless"):
    config_checks.validate(config)
  config.dataset.minmax_normalize = True
  config_checks.validate(config)


def test_the_model_checks_come_through():
  config = _load("default")
  config.model.num_slnl_blocks = 7
  with pytest.raises(config_checks.ConfigError, match=r"config\.model\.num_slnl_blocks must be in \[0, 6\]"):
    config_checks.validate(config)
  config = _load("default")
  config.loss.name = "smf"
  with pytest.raises(config_checks.ConfigError, match="unknown loss 'smf'"):
    config_checks.validate(config)


@pytest.mark.parametrize(("pool_every", "blocks"), [(1, 3), (2, 3), (3, 3)])
def test_smallest_sizes_match_the_model(pool_every, blocks):
  import jax
  import jax.numpy as jnp

  from slnl_jax.models import slnl_rfa

  config = _load("default")
  config.model.channels, config.model.kernel_sizes = (4,) * blocks, (3,) * blocks
  config.model.num_slnl_blocks, config.model.pool_every, config.model.num_systems = 1, pool_every, 1
  smallest = 2 ** config_checks.num_pools(config.model)

  def runs(frames: int, joints_out: int) -> bool:
    """No layer's output is empty (below the smallest sizes a max-pool leaves 0 frames or joints)."""
    config.dataset.num_frames, config.model.num_joints_out = frames, joints_out
    model = slnl_rfa.create_model(config)
    x = jax.ShapeDtypeStruct((1, 1, frames, 5, 3), jnp.float32)
    try:
      _, variables = jax.eval_shape(
        lambda x: model.init_with_output(jax.random.key(0), x, train=False, capture_intermediates=True), x
      )
    except (ZeroDivisionError, ValueError, TypeError):
      return False
    return all(leaf.size for leaf in jax.tree.leaves(variables["intermediates"]))

  assert runs(smallest, smallest)
  if smallest > 1:
    assert not runs(smallest - 1, smallest) and not runs(smallest, smallest - 1)


def test_a_batch_larger_than_the_train_split_is_a_config_error():
  from slnl_jax import steps

  config = _load("default")
  config.train.batch_size = 400
  with pytest.raises(config_checks.ConfigError, match=r"the train split has 21 examples, fewer than .*=400"):
    steps.steps_per_epoch(config, 21)
