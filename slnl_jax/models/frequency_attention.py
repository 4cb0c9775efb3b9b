"""Frequency attention (Sec. 3.2, Eq. 1-4) and the variants compared in Table 4.

For every channel c of X' (T', N', C) the 2-D DFT over (frames, joints) is

  F_c(u, v) = sum_t sum_n X'_c(t, n) exp(-2 pi i (u t / T' + v n / N')) = F_cos,c(u, v) + i F_sin,c(u, v),

so F_cos is the real part (the cosine sum) and F_sin the imaginary part (minus the sine sum) of `jnp.fft.fft2`.
Each component is averaged over channels, two FC layers with a bottleneck (ratio lambda, ReLU between) and a
sigmoid turn the flattened (T', N') average into a mask M, the mask scales that component of every channel, and
the attended spectrum goes back through `ifft2` (real part):

  X'' = X' + Re ifft2(M_cos * F_cos + i M_sin * F_sin).

Variants (`variant`): `none` (identity); `amplitude` (aFA, see below); `shared` (sFA: cos and sin masks from one
set of FC weights, no residual); `dependent` (dFA: a set of FC weights per component, no residual); `residual`
(rFA, dFA plus the residual X').

aFA, as we read the paper: it attends the amplitude spectrum |F| = sqrt(F_cos^2 + F_sin^2) instead of the two
components, and the paper explains its lower accuracy (Table 4) by the phase being lost. It gives no formula, so
we take that literally: one mask from the channel-averaged |F| scales the amplitude of every channel, and the
inverse transform gets the masked amplitude alone, with zero phase,

  X'' = Re ifft2(M_amp * |F|)   (no residual),

so everything the phase carries (where in time and on which joints a pattern sits) is gone: shifting X'
circularly in frames or joints leaves X'' unchanged. (Keeping the phase, M_amp * F, would make aFA a
phase-preserving filter, which the paper's explanation rules out.)

Masks are sown as intermediates (shape (B, T', N')): `fa_mask_cos` and `fa_mask_sin`, or `fa_mask_amplitude` for
aFA. The module runs in float32 whatever `dtype` is, because the FFTs need complex64; its output is cast to
`dtype`.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

VARIANTS = ("none", "amplitude", "shared", "dependent", "residual")


class SpectralMask(nn.Module):
  """Two FC layers (bottleneck T'N'/lambda, ReLU) + sigmoid: a (B, T', N') map -> a (B, T', N') mask in (0, 1)."""

  reduction: int = 16

  @nn.compact
  def __call__(self, spectrum: jax.Array) -> jax.Array:
    b, t, n = spectrum.shape
    # The DFT sums T'N' terms, so its coefficients grow like sqrt(T'N') (DC like T'N'). Feeding them unscaled
    # saturates the sigmoid within a few steps (masks stuck at 0/1, no gradient); the orthonormal scaling
    # 1/sqrt(T'N') keeps the FC input O(1). The masks still multiply the unscaled spectrum (Eq. 3).
    h = spectrum.reshape(b, t * n) / jnp.sqrt(t * n)
    h = nn.relu(nn.Dense(max(1, t * n // self.reduction), name="fc1")(h))
    return nn.sigmoid(nn.Dense(t * n, name="fc2")(h)).reshape(b, t, n)


class FrequencyAttention(nn.Module):
  """Frequency attention over (frames, joints): (B, T', N', C) -> (B, T', N', C). See the module docstring.

  Attributes:
    variant: one of `VARIANTS`; `residual` is the paper's rFA.
    reduction: lambda, the bottleneck ratio of the FC layers.
    dtype: the output dtype (the computation itself is float32).
  """

  variant: str = "residual"
  reduction: int = 16
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.variant not in VARIANTS:
      raise ValueError(f"frequency attention variant must be one of {VARIANTS}, got {self.variant!r}")
    if self.variant == "none":
      return x
    x32 = x.astype(jnp.float32)
    spectrum = jnp.fft.fft2(x32, axes=(1, 2))
    if self.variant == "amplitude":
      mask = SpectralMask(self.reduction, name="fc_amplitude")(jnp.abs(spectrum).mean(-1))
      self.sow("intermediates", "fa_mask_amplitude", mask)
      attended = (jnp.abs(spectrum) * mask[..., None]).astype(spectrum.dtype)  # the phase is dropped
    else:
      if self.variant == "shared":
        fc_cos = fc_sin = SpectralMask(self.reduction, name="fc_shared")
      else:
        fc_cos = SpectralMask(self.reduction, name="fc_cos")
        fc_sin = SpectralMask(self.reduction, name="fc_sin")
      mask_cos = fc_cos(spectrum.real.mean(-1))
      mask_sin = fc_sin(spectrum.imag.mean(-1))
      self.sow("intermediates", "fa_mask_cos", mask_cos)
      self.sow("intermediates", "fa_mask_sin", mask_sin)
      attended = jax.lax.complex(spectrum.real * mask_cos[..., None], spectrum.imag * mask_sin[..., None])
    out = jnp.fft.ifft2(attended, axes=(1, 2)).real
    if self.variant == "residual":
      out = out + x32
    return out.astype(self.dtype)
