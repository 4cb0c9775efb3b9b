"""The backbone's building blocks: the local block (Fig. 3b) and the SLnL block (Fig. 3c).

Both map (B, T, N, C_in) -> (B, T, N, features), channels-last over frames x joints.
"""

import functools
from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from slnl_jax.models.nonlocal_attention import KINDS, NonLocal

# BatchNorm with PyTorch's defaults (momentum 0.1 there is 0.9 here, eps 1e-5): the paper does not give them;
# our choice, the common one for skeleton CNNs.
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def batch_norm(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
  """The BatchNorm used throughout the model (running statistics at evaluation)."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON, dtype=dtype, name=name)


def conv_matmul_kernel_grad(
  lhs: jax.Array,
  rhs: jax.Array,
  window_strides: Sequence[int],
  padding: str | Sequence[tuple[int, int]],
  lhs_dilation: Sequence[int] | None = None,
  rhs_dilation: Sequence[int] | None = None,
  dimension_numbers: Any = None,
  feature_group_count: int = 1,
  precision: Any = None,
) -> jax.Array:
  """`lax.conv_general_dilated` whose kernel gradient is computed as kh * kw matmuls of shifted inputs.

  XLA:CPU's convolution kernel gradient runs up to 12x slower than these matmuls at NTU batch 32 (1.1-12x by
  shape; forward and input gradient are fine; benchmarks/README.md), so those two stay XLA's. Same
  function and gradients; pass it as `nn.Conv(conv_general_dilated=...)`. Supports what the local blocks use:
  2-D, channels-last (NHWC / HWIO), stride 1, no dilation, one feature group.
  """
  conv = functools.partial(
    jax.lax.conv_general_dilated,
    window_strides=window_strides,
    padding=padding,
    lhs_dilation=lhs_dilation,
    rhs_dilation=rhs_dilation,
    dimension_numbers=dimension_numbers,
    feature_group_count=feature_group_count,
    precision=precision,
  )
  channels_last = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, ("NHWC", "HWIO", "NHWC"))
  if (
    jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers) != channels_last
    or any(s != 1 for s in window_strides)
    or any(d != 1 for d in (*(lhs_dilation or ()), *(rhs_dilation or ())))
    or feature_group_count != 1
  ):
    raise NotImplementedError("conv_matmul_kernel_grad: only 2-D NHWC/HWIO, stride 1, undilated, ungrouped")
  kh, kw = rhs.shape[:2]
  pads = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), (1, 1), padding) if isinstance(padding, str) else padding

  @jax.custom_vjp
  def convolve(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return conv(x, kernel)

  def forward(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return conv(x, kernel), (x, kernel)

  def backward(residuals: tuple[jax.Array, jax.Array], d_out: jax.Array) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    d_x = jax.vjp(lambda x: conv(x, kernel), x)[1](d_out)[0]
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    frames, joints = d_out.shape[1:3]

    def tap(offset: jax.Array) -> jax.Array:
      shifted = jax.lax.dynamic_slice(x, (0, offset[0], offset[1], 0), (x.shape[0], frames, joints, x.shape[3]))
      # Flattened to one contraction axis first: XLA:CPU runs this 2-D form ~4x faster than the 4-D einsum.
      return jnp.einsum(
        "mc,mf->cf",
        shifted.reshape(-1, shifted.shape[-1]),
        d_out.reshape(-1, d_out.shape[-1]),
        preferred_element_type=jnp.float32,
      )

    # A loop, so that one shifted copy of x exists at a time (unrolled, XLA makes all kh * kw copies at once).
    offsets = jnp.array([(i, j) for i in range(kh) for j in range(kw)], jnp.int32)
    d_kernel = jax.lax.map(tap, offsets).reshape(kernel.shape)
    return d_x, d_kernel.astype(kernel.dtype)

  convolve.defvjp(forward, backward)
  return convolve(lhs, rhs)


def conv_auto_kernel_grad(lhs: jax.Array, rhs: jax.Array, *args: Any, **kwargs: Any) -> jax.Array:
  """`conv_matmul_kernel_grad` on CPU, XLA's own convolution (and gradients) on every other platform.

  The matmul kernel gradient is a serial `lax.map` over the kernel taps, which only pays off on XLA:CPU; on a
  GPU or TPU XLA's convolution gradient is one fused kernel. Chosen when the program is lowered
  (`jax.lax.platform_dependent`), so one traced step serves every platform.
  """
  return jax.lax.platform_dependent(
    lhs,
    rhs,
    cpu=lambda x, kernel: conv_matmul_kernel_grad(x, kernel, *args, **kwargs),
    default=lambda x, kernel: jax.lax.conv_general_dilated(x, kernel, *args, **kwargs),
  )


CONV_KERNEL_GRADS = {
  "auto": conv_auto_kernel_grad,
  "xla": jax.lax.conv_general_dilated,
  "matmul": conv_matmul_kernel_grad,
}


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
    conv_kernel_grad: `auto` (`matmul` on CPU, `xla` elsewhere: `conv_auto_kernel_grad`), `xla` (XLA's own
      convolution gradients) or `matmul` (the kernel gradient as matmuls, `conv_matmul_kernel_grad`: the same
      function, up to 12x faster on CPU).
  """

  features: int
  kernel_size: int = 3
  dropout_rate: float = 0.2
  dtype: Any = jnp.float32
  conv_kernel_grad: str = "auto"

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
    return nn.Conv(
      self.features,
      kernel,
      padding="SAME",
      use_bias=False,
      dtype=self.dtype,
      conv_general_dilated=CONV_KERNEL_GRADS[self.conv_kernel_grad],
      name=f"conv_{kind}",
    )(x)


class SLnLBlock(LocalBlock):
  """Synchronous local and non-local block (Fig. 3c).

  Our reading of Fig. 3c: the local block with a non-local module beside each of its three convolutions. Every
  stage feeds its input to both branches and sums them, z = conv_kind(x) + NonLocal_kind(x), in the order
  temporal, spatial, spatio-temporal; then BN, ReLU, the residual path and dropout exactly as in `LocalBlock`.
  The non-local modules' output transforms W_w start at zero, so at initialisation the block equals a local block.

  Attributes:
    nonlocal_kinds: the stages that get a non-local branch (all three in the paper; fewer for ablations).
    embed_ratio: the non-local embedding channels L = embed_ratio * C of the stage input.
    nonlocal_impl: one of `nonlocal_attention.IMPLS` (see `NonLocal`); `auto` picks per platform and kind.
  """

  nonlocal_kinds: tuple[str, ...] = KINDS
  embed_ratio: float = 0.5
  nonlocal_impl: str = "auto"

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
