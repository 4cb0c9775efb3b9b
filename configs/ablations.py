r"""The paper's ablations (Tables 3-5) as small overrides of any dataset config.

  python -m slnl_jax.main --config=configs/ablations.py:msr_action3d,fa_none --workdir=...
  python -m slnl_jax.main --config=configs/ablations.py:ntu60_xsub,m1_0,loss_cross_entropy --workdir=...

The argument is a base config module of configs/ followed by presets, applied left to right:

  loss_<name>   Table 3, the loss: loss_cross_entropy, loss_focal_loss, loss_smce, loss_smfl (Eq. 12-16)
  fa_<variant>  Table 4, frequency attention: fa_none, fa_amplitude, fa_shared, fa_dependent, fa_residual
  m1_<k>        Table 5, non-local (SLnL) vs local blocks: the first k blocks are SLnL blocks (M1 = k),
                the rest local (M2); m1_0 is the local-only network

tools/ablate.py (slnl_jax/ablation.py) runs whole tables of these presets.
"""

import importlib

import ml_collections

LOSSES = ("cross_entropy", "focal_loss", "smce", "smfl")
FREQUENCY_ATTENTION = ("none", "amplitude", "shared", "dependent", "residual")


def apply(config: ml_collections.ConfigDict, preset: str) -> ml_collections.ConfigDict:
  """Applies one preset (see the module docstring) to `config` in place and returns it."""
  kind, _, value = preset.partition("_")
  if kind == "loss" and value in LOSSES:
    config.loss.name = value
  elif kind == "fa" and value in FREQUENCY_ATTENTION:
    config.model.frequency_attention = value
  elif kind == "m1" and value.isdigit() and int(value) <= len(config.model.channels):
    config.model.num_slnl_blocks = int(value)
  else:
    raise ValueError(
      f"unknown ablation preset {preset!r}: expected loss_<{'|'.join(LOSSES)}>, "
      f"fa_<{'|'.join(FREQUENCY_ATTENTION)}> or m1_<0..{len(config.model.channels)}> "
      "(the number of SLnL blocks)"
    )
  return config


def get_config(config_string: str = "") -> ml_collections.ConfigDict:
  """`config_string` = "BASE[,PRESET...]", e.g. "msr_action3d,fa_none"."""
  base, *presets = [part.strip() for part in config_string.split(",")]
  if not base:
    raise ValueError("name a base config and presets: --config=configs/ablations.py:msr_action3d,fa_none")
  try:
    module = importlib.import_module(f"configs.{base}")
  except ModuleNotFoundError as e:
    raise ValueError(f"no base config configs/{base}.py for the ablation {config_string!r}") from e
  config = module.get_config()
  for preset in presets:
    apply(config, preset)
  return config
