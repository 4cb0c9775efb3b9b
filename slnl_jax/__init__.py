"""slnl_jax: SLnL-rFA skeleton action recognition in JAX/Flax (Hu, Cui & Yu, ICME 2019).

The public names are imported on first use (PEP 562), so `slnl_jax.data.readers` and an exported model's loader
run without importing flax, optax or TensorFlow.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
  "SLnLrFA": "slnl_jax.models",
  "create_model": "slnl_jax.models",
  "cross_entropy": "slnl_jax.losses",
  "focal_loss": "slnl_jax.losses",
  "multitask_loss": "slnl_jax.losses",
  "smce": "slnl_jax.losses",
  "smfl": "slnl_jax.losses",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
  if name not in _PUBLIC:
    raise AttributeError(f"module 'slnl_jax' has no attribute {name!r}")
  return getattr(importlib.import_module(_PUBLIC[name]), name)
