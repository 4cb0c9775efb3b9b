"""Transform network (Sec. 3.1): a skeleton transformer and a coordinate transformer.

After Li et al. (ICMEW 2017): the skeleton transformer re-expresses the N input joints as N' learned linear
combinations of them, and the coordinate transformer projects every joint's d coordinates onto K learned
(oblique) coordinate systems, d -> K*d.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class TransformNetwork(nn.Module):
  """Skeleton + coordinate transformer: X (T, N, d) -> X' (T, N', K*d), channels-last per clip.

  Both are bias-free linear maps with no nonlinearity in between, so the output stays a change of joints and of
  coordinate system as in the paper; the data BatchNorm before this module already supplies the affine shift.

  Attributes:
    num_joints_out: N', the number of learned joints.
    num_systems: K, the number of learned coordinate systems.
    dtype: the computation dtype.
  """

  num_joints_out: int = 64
  num_systems: int = 10
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    """Maps (B, T, N, d) to (B, T, N', K*d)."""
    d = x.shape[-1]
    # Skeleton transformer: a Dense over the joint axis, applied with joints moved last.
    x = jnp.swapaxes(x, -1, -2)
    x = nn.Dense(self.num_joints_out, use_bias=False, dtype=self.dtype, name="skeleton")(x)
    x = jnp.swapaxes(x, -1, -2)
    # Coordinate transformer: a Dense over the coordinate axis.
    return nn.Dense(self.num_systems * d, use_bias=False, dtype=self.dtype, name="coordinate")(x)
