"""SLnL-rFA model modules, one per paper concept (Sec. 3, Fig. 1 and 3)."""

from slnl_jax.models.blocks import LocalBlock, SLnLBlock
from slnl_jax.models.frequency_attention import FrequencyAttention
from slnl_jax.models.nonlocal_attention import NonLocal
from slnl_jax.models.slnl_rfa import (
  HEADS,
  PREDICTION_HEAD,
  SLnLrFA,
  count_params,
  create_model,
  flop_reference,
  model_summary,
)
from slnl_jax.models.transform import TransformNetwork

__all__ = [
  "HEADS",
  "PREDICTION_HEAD",
  "FrequencyAttention",
  "LocalBlock",
  "NonLocal",
  "SLnLBlock",
  "SLnLrFA",
  "TransformNetwork",
  "count_params",
  "create_model",
  "flop_reference",
  "model_summary",
]
