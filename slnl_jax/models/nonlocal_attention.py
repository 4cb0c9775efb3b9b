"""Non-local module (Sec. 3.3, Eq. 5-10): embedded-Gaussian attention over a (T, N, C) feature map.

With varphi(x) = W_varphi x, psi(x) = W_psi x and g(x) = W_g x linear embeddings to L channels,

  f(x_i, x_j) = exp(varphi(x_i)^T psi(x_j)),   y_i = sum_j f(x_i, x_j) g(x_j) / sum_j f(x_i, x_j),   z_i = W_w y_i,

i.e. a softmax over j of the dot products (no 1/sqrt(L) scaling). The three kinds differ only in which positions
i, j range over: `temporal` the T frames of each joint, `spatial` the N joints of each frame, `spatio_temporal`
all T*N positions of the clip.

The module returns z = W_w y without the residual x: the SLnL block (blocks.py) adds it to a local convolution
and has its own residual path. W_w starts at zero, so a freshly initialised SLnL block computes exactly its local
block and the non-local branch grows from there (the non-local paper's zero-init of the output transform).
"""

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

KINDS = ("temporal", "spatial", "spatio_temporal")
IMPLS = ("einsum", "dot_product_attention", "chunked")
# Query rows per chunk of the `chunked` implementation: bounds its live affinity to G x 512 x P floats.
QUERY_CHUNK = 512


def _group(x: jax.Array, kind: str) -> jax.Array:
  """(B, T, N, L) -> (groups, P, L): the sets of positions that attend to each other."""
  b, t, n, _ = x.shape
  if kind == "temporal":
    return jnp.swapaxes(x, 1, 2).reshape(b * n, t, -1)
  if kind == "spatial":
    return x.reshape(b * t, n, -1)
  return x.reshape(b, t * n, -1)


def _ungroup(y: jax.Array, kind: str, shape: tuple[int, ...]) -> jax.Array:
  """Inverse of `_group` for an output of `shape[:3] + (L,)`."""
  b, t, n = shape[:3]
  if kind == "temporal":
    return jnp.swapaxes(y.reshape(b, n, t, -1), 1, 2)
  return y.reshape(b, t, n, -1)


def affinity(query: jax.Array, key: jax.Array) -> jax.Array:
  """Eq. 5-8: softmax_j(varphi(x_i)^T psi(x_j)) for (G, P, L) embeddings -> (G, P, P), softmax in float32."""
  logits = jnp.einsum("gil,gjl->gij", query, key, preferred_element_type=jnp.float32)
  return jax.nn.softmax(logits, axis=-1)


def chunked_attention(query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
  """softmax(query key^T) value for (G, P, L) inputs, one chunk of query rows at a time.

  Each chunk's affinity is recomputed in the backward pass (`jax.checkpoint`) instead of stored, so memory grows
  with P * QUERY_CHUNK rather than P^2: at NTU size (P = 4096) the 64 MiB-per-clip affinity never exists whole.
  """
  g, p, width = query.shape
  chunk = min(p, QUERY_CHUNK)
  while p % chunk:
    chunk -= 1
  chunks = jnp.moveaxis(query.reshape(g, p // chunk, chunk, width), 1, 0)

  @jax.checkpoint
  def attend(query_chunk: jax.Array) -> jax.Array:
    return jnp.einsum("gij,gjl->gil", affinity(query_chunk, key).astype(value.dtype), value)

  return jnp.moveaxis(jax.lax.map(attend, chunks), 0, 1).reshape(g, p, -1)


class NonLocal(nn.Module):
  """Embedded-Gaussian non-local operation: (B, T, N, C) -> (B, T, N, features). See the module docstring.

  With kind `spatio_temporal` and a mutable `intermediates` collection, the affinity is sown as `st_affinity`,
  shape (B, T*N, T*N) with positions ordered frame-major (p = t * N + n); otherwise it is not materialised
  beyond what `impl` needs.

  Attributes:
    kind: one of `KINDS`.
    features: output channels of W_w.
    embed_ratio: L = round(embed_ratio * C), at least 1 (the paper uses C/2).
    impl: `einsum` (explicit softmax), `dot_product_attention` (`jax.nn.dot_product_attention`, scale 1, the
      implementation left to XLA, which may pick a fused kernel on GPU) or `chunked` (`chunked_attention`, the
      memory-saving one). All three compute the same function.
    dtype: the computation dtype (the softmax runs in float32).
  """

  kind: str
  features: int
  embed_ratio: float = 0.5
  impl: str = "einsum"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    if self.kind not in KINDS:
      raise ValueError(f"non-local kind must be one of {KINDS}, got {self.kind!r}")
    if self.impl not in IMPLS:
      raise ValueError(f"non-local implementation must be one of {IMPLS}, got {self.impl!r}")
    embed = functools.partial(nn.Dense, max(1, round(self.embed_ratio * x.shape[-1])), use_bias=False, dtype=self.dtype)
    query = _group(embed(name="varphi")(x), self.kind)
    key = _group(embed(name="psi")(x), self.kind)
    value = _group(embed(name="g")(x), self.kind)
    sow = self.kind == "spatio_temporal" and self.is_mutable_collection("intermediates")
    if self.impl == "einsum" or sow:
      weights = affinity(query, key)
      if sow:
        self.sow("intermediates", "st_affinity", weights)
    if self.impl == "einsum":
      y = jnp.einsum("gij,gjl->gil", weights.astype(value.dtype), value)
    elif self.impl == "chunked":
      y = chunked_attention(query, key, value)
    else:
      # One attention head: (G, P, L) -> (G, P, 1, L).
      y = jax.nn.dot_product_attention(query[:, :, None], key[:, :, None], value[:, :, None], scale=1.0)[:, :, 0]
    y = _ungroup(y, self.kind, x.shape)
    return nn.Dense(self.features, use_bias=False, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="w")(y)
