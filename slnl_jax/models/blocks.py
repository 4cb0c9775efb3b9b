"""The backbone's building blocks: the local block (Fig. 3b) and the SLnL block (Fig. 3c).

Both map (B, T, N, C_in) -> (B, T, N, features), channels-last over frames x joints.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from slnl_jax.models.nonlocal_attention import KINDS, NonLocal

# PyTorch-style BatchNorm statistics (momentum 0.1 there is 0.9 here), as the paper's implementation used.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def batch_norm(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
  """The BatchNorm used throughout the model (running statistics at evaluation)."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype, name=name)


class TemporalConv(nn.Module):
  """A bias-free, 'SAME'-padded k x 1 convolution over frames of a (B, T, N, C) map, as k shifted matmuls.

  The same function and parameter (`kernel`, (k, 1, C, features), LeCun-normal) as `nn.Conv(features, (k, 1))`.
  XLA:CPU runs convolutions along the frame axis 2-4x slower than k matmuls over shifted frames (forward and
  backward; benchmarks/README.md), and accelerators run either well.
  """

  features: int
  kernel_size: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    k, frames = self.kernel_size, x.shape[1]
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (k, 1, x.shape[-1], self.features))
    x, kernel = nn.dtypes.promote_dtype(x, kernel, dtype=self.dtype)
    x = jnp.pad(x, ((0, 0), ((k - 1) // 2, k // 2), (0, 0), (0, 0)))
    return sum(jnp.einsum("btnc,cf->btnf", x[:, i : i + frames], kernel[i, 0]) for i in range(k))


class LocalBlock(nn.Module):
  """Local block (Fig. 3b): k x 1 temporal, 1 x k spatial and k x k spatio-temporal convolutions, BN, ReLU.

  out = Dropout(ReLU(BN(conv_st(conv_s(conv_t(x))))) + shortcut(x)), where the shortcut is the identity, or a
  1 x 1 convolution when the channels change. The convolutions are bias-free (BN follows) and 'SAME'-padded; the
  temporal one changes the channels.

  Attributes:
    features: output channels.
    kernel_size: k.
    dropout_rate: dropout after the residual sum (0.2 in the paper).
    dtype: the computation dtype.
  """

  features: int
  kernel_size: int = 3
  dropout_rate: float = 0.2
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    k = self.kernel_size
    y = x
    for kind, kernel in zip(KINDS, ((k, 1), (1, k), (k, k)), strict=True):
      y = self.stage(kind, kernel, y)
    y = nn.relu(batch_norm(train, self.dtype, "bn")(y))
    shortcut = x
    if x.shape[-1] != self.features:
      shortcut = nn.Conv(self.features, (1, 1), dtype=self.dtype, name="projection")(x)
    return nn.Dropout(self.dropout_rate, deterministic=not train)(y + shortcut)

  @nn.nowrap
  def stage(self, kind: str, kernel: tuple[int, int], x: jax.Array) -> jax.Array:
    """One stage of the block: the local convolution of `kind`."""
    if kind == "temporal":
      return TemporalConv(self.features, kernel[0], self.dtype, name=f"conv_{kind}")(x)
    return nn.Conv(self.features, kernel, padding="SAME", use_bias=False, dtype=self.dtype, name=f"conv_{kind}")(x)


class SLnLBlock(LocalBlock):
  """Synchronous local and non-local block (Fig. 3c).

  Our reading of Fig. 3c: the local block with a non-local module beside each of its three convolutions. Every
  stage feeds its input to both branches and sums them, z = conv_kind(x) + NonLocal_kind(x), in the order
  temporal, spatial, spatio-temporal; then BN, ReLU, the residual path and dropout exactly as in `LocalBlock`.
  The non-local modules' output transforms W_w start at zero, so at initialisation the block equals a local block.

  Attributes:
    nonlocal_kinds: the stages that get a non-local branch (all three in the paper; fewer for ablations).
    embed_ratio: the non-local embedding channels L = embed_ratio * C of the stage input.
    nonlocal_impl: `einsum` or `dot_product_attention` (see `NonLocal`).
  """

  nonlocal_kinds: tuple[str, ...] = KINDS
  embed_ratio: float = 0.5
  nonlocal_impl: str = "einsum"

  def __post_init__(self) -> None:
    unknown = [kind for kind in self.nonlocal_kinds if kind not in KINDS]
    if unknown:
      raise ValueError(f"non-local kinds must be among {KINDS}, got {unknown}")
    super().__post_init__()

  @nn.nowrap
  def stage(self, kind: str, kernel: tuple[int, int], x: jax.Array) -> jax.Array:
    """One stage: the local convolution of `kind` plus, if enabled, the non-local module of the same kind."""
    y = super().stage(kind, kernel, x)
    if kind in self.nonlocal_kinds:
      y = y + NonLocal(kind, self.features, self.embed_ratio, self.nonlocal_impl, self.dtype, name=f"nonlocal_{kind}")(
        x
      )
    return y
