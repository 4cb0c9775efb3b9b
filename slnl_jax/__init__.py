"""slnl_jax: SLnL-rFA skeleton action recognition in JAX/Flax (Hu, Cui & Yu, ICME 2019)."""

from slnl_jax.losses import cross_entropy, focal_loss, multitask_loss, smce, smfl
from slnl_jax.models import SLnLrFA, create_model

__version__ = "0.1.0"

__all__ = [
  "SLnLrFA",
  "__version__",
  "create_model",
  "cross_entropy",
  "focal_loss",
  "multitask_loss",
  "smce",
  "smfl",
]
