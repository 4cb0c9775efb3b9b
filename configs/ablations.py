r"""The paper's ablations (Tables 3-5) as small overrides of any dataset config.

  python -m slnl_jax.main --config=configs/ablations.py:msr_action3d,fa_none --workdir=...
  python -m slnl_jax.main --config=configs/ablations.py:nw_ucla_cpu,baseline1 --workdir=...

The argument is a base config module of configs/ followed by presets, applied left to right:

  loss_<name>   Table 3, the loss: loss_cross_entropy, loss_focal_loss, loss_smce, loss_smfl (Eq. 12-16)
  gamma_<x>     the focusing parameter gamma of FL / SMFL (e.g. gamma_2)
  margin_<x>    the margin m of SMCE / SMFL (e.g. margin_0.6)
  fa_<variant>  Table 4, frequency attention: fa_none, fa_amplitude, fa_shared, fa_dependent, fa_residual
  m1_<k>        Table 5, non-local (SLnL) vs local blocks: the first k blocks are SLnL blocks (M1 = k),
                the rest local (M2); m1_0 is the local-only network
  nonlocal_<kinds>  Table 5, the non-local stages of an SLnL block: nonlocal_temporal (tSLnL),
                nonlocal_spatial (sSLnL), nonlocal_all (SLnL: temporal, spatial and spatio-temporal)
  baseline1, baseline2, baseline3  the paper's chain (Sec. 4.3): Baseline1 = transform network + local blocks,
                no frequency attention, cross-entropy; Baseline2 = Baseline1 with the config's SMFL;
                Baseline3 = Baseline2 + rFA. The full model is Baseline3 + SLnL blocks (the config itself).

tools/ablate.py (slnl_jax/ablation.py) runs whole tables of these presets.
"""

import importlib

import ml_collections

LOSSES = ("cross_entropy", "focal_loss", "smce", "smfl")
FREQUENCY_ATTENTION = ("none", "amplitude", "shared", "dependent", "residual")
NONLOCAL_KINDS = {
  "temporal": ("temporal",),
  "spatial": ("spatial",),
  "all": ("temporal", "spatial", "spatio_temporal"),
}
# The chain of the paper's ablations, each link the presets it applies to the full model.
CHAIN = {
  "baseline1": ("fa_none", "m1_0", "loss_cross_entropy"),
  "baseline2": ("fa_none", "m1_0", "loss_smfl"),
  "baseline3": ("fa_residual", "m1_0", "loss_smfl"),
}


def _number(value: str) -> float | None:
  try:
    return float(value)
  except ValueError:
    return None


def apply(config: ml_collections.ConfigDict, preset: str) -> ml_collections.ConfigDict:
  """Applies one preset (see the module docstring) to `config` in place and returns it."""
  kind, _, value = preset.partition("_")
  if preset in CHAIN:
    for link in CHAIN[preset]:
      apply(config, link)
  elif kind == "loss" and value in LOSSES:
    config.loss.name = value
  elif kind in ("gamma", "margin") and _number(value) is not None and _number(value) >= 0:
    setattr(config.loss, kind, _number(value))
  elif kind == "nonlocal" and value in NONLOCAL_KINDS:
    config.model.nonlocal_kinds = NONLOCAL_KINDS[value]
  elif kind == "fa" and value in FREQUENCY_ATTENTION:
    config.model.frequency_attention = value
  elif kind == "m1" and value.isdigit() and int(value) <= len(config.model.channels):
    config.model.num_slnl_blocks = int(value)
  else:
    raise ValueError(
      f"unknown ablation preset {preset!r}: expected loss_<{'|'.join(LOSSES)}>, gamma_<x>, margin_<x>, "
      f"fa_<{'|'.join(FREQUENCY_ATTENTION)}>, m1_<0..{len(config.model.channels)}> (the number of SLnL "
      f"blocks), nonlocal_<{'|'.join(NONLOCAL_KINDS)}> or one of {', '.join(CHAIN)}"
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
