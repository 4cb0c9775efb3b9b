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

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.experimental.pallas.ops.gpu import attention as gpu_attention
from jax.experimental.pallas.ops.tpu import flash_attention as tpu_attention

KINDS = ("temporal", "spatial", "spatio_temporal")
IMPLS = ("auto", "einsum", "dot_product_attention", "chunked")
# Query rows per chunk of the `chunked` implementation: its live affinity is one group's 512 x P floats.
QUERY_CHUNK = 512
# Sequence block of the Pallas flash-attention kernels (their default); they are used when it divides P.
FLASH_BLOCK = 128


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


def einsum_attention(query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
  """softmax(query key^T) value for (G, P, L) inputs through the whole (G, P, P) affinity (XLA's batched form)."""
  return jnp.einsum("gij,gjl->gil", affinity(query, key).astype(value.dtype), value)


def _split_rows(x: jax.Array, chunk: int) -> jax.Array:
  """(G, P, ...) -> (G, P // chunk, chunk, ...)."""
  return x.reshape(x.shape[0], x.shape[1] // chunk, chunk, *x.shape[2:])


def _chunked_forward(query: jax.Array, key: jax.Array, value: jax.Array, chunk: int) -> tuple[jax.Array, jax.Array]:
  """The attention output and each query row's log-sum-exp of its logits, one group and `chunk` rows at a time."""

  def group(args: tuple[jax.Array, jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
    queries, k, v = args

    def rows(q: jax.Array) -> tuple[jax.Array, jax.Array]:
      logits = jnp.einsum("il,jl->ij", q, k, preferred_element_type=jnp.float32)
      peak = logits.max(axis=-1, keepdims=True)
      weights = jnp.exp(logits - peak)
      total = weights.sum(axis=-1, keepdims=True)
      out = jnp.einsum("ij,jl->il", weights.astype(v.dtype), v, preferred_element_type=jnp.float32) / total
      return out.astype(v.dtype), (peak + jnp.log(total))[:, 0]

    return jax.lax.map(rows, queries)

  out, log_total = jax.lax.map(group, (_split_rows(query, chunk), key, value))
  g, p = query.shape[:2]
  return out.reshape(g, p, -1), log_total.reshape(g, p)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def _chunked(query: jax.Array, key: jax.Array, value: jax.Array, chunk: int) -> jax.Array:
  return _chunked_forward(query, key, value, chunk)[0]


def _chunked_fwd(query: jax.Array, key: jax.Array, value: jax.Array, chunk: int) -> tuple[jax.Array, tuple]:
  out, log_total = _chunked_forward(query, key, value, chunk)
  return out, (query, key, value, out, log_total)


def _chunked_bwd(chunk: int, residuals: tuple, d_out: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Recomputes each chunk's softmax from the saved log-sum-exp; d logits = A * (dA - rowsum(dO * O))."""
  query, key, value, out, log_total = residuals
  # sum_j A_ij dA_ij = dO_i . O_i: the softmax backward's row term without the affinity.
  row_term = jnp.sum(d_out.astype(jnp.float32) * out.astype(jnp.float32), axis=-1)

  def group(args: tuple[jax.Array, ...]) -> tuple[jax.Array, jax.Array, jax.Array]:
    queries, k, v, d_outs, log_totals, row_terms = args
    k_t = k.T

    # Chunk-sized arrays are held transposed, keys x queries, and the small operands are transposed instead:
    # every matmul below contracts the lhs's last axis with the rhs's first, the form XLA:CPU runs fastest
    # (a transposed (512, 4096) lhs made a matmul 4x slower; forward + backward went from 1.14 s to 0.82-0.86 s).
    def rows(carry: tuple[jax.Array, jax.Array], xs: tuple[jax.Array, ...]) -> tuple[tuple, jax.Array]:
      d_key, d_value = carry
      q, d_o, lse, row = xs
      weights_t = jnp.exp(jnp.einsum("jl,li->ji", k, q.T, preferred_element_type=jnp.float32) - lse[None, :])
      d_value = d_value + jnp.einsum("ji,il->jl", weights_t, d_o, preferred_element_type=jnp.float32)
      d_weights_t = jnp.einsum("jl,li->ji", v, d_o.T, preferred_element_type=jnp.float32)
      d_logits_t = weights_t * (d_weights_t - row[None, :])
      d_key = d_key + jnp.einsum("ji,il->jl", d_logits_t, q, preferred_element_type=jnp.float32)
      return (d_key, d_value), jnp.einsum("lj,ji->li", k_t, d_logits_t, preferred_element_type=jnp.float32).T

    zeros = (jnp.zeros(k.shape, jnp.float32), jnp.zeros(v.shape, jnp.float32))
    (d_key, d_value), d_query = jax.lax.scan(rows, zeros, (queries, d_outs, log_totals, row_terms))
    return d_query, d_key, d_value

  d_query, d_key, d_value = jax.lax.map(
    group,
    (
      _split_rows(query, chunk),
      key,
      value,
      _split_rows(d_out, chunk),
      _split_rows(log_total, chunk),
      _split_rows(row_term, chunk),
    ),
  )
  return d_query.reshape(query.shape).astype(query.dtype), d_key.astype(key.dtype), d_value.astype(value.dtype)


_chunked.defvjp(_chunked_fwd, _chunked_bwd)


def chunked_attention(query: jax.Array, key: jax.Array, value: jax.Array, query_chunk: int | None = None) -> jax.Array:
  """softmax(query key^T) value for (G, P, L) inputs, one group and one chunk of query rows at a time.

  Memory-efficient attention in the manner of FlashAttention (Dao et al., 2022): the forward pass keeps only each
  row's log-sum-exp, the backward pass recomputes one chunk's affinity from it, so memory grows with
  P * QUERY_CHUNK rather than G * P^2 (at NTU size, P = 4096, the 64 MiB-per-clip affinity never exists whole).
  Working on one group's chunk at a time also keeps it in cache: on CPU this runs 2-3x as fast as the
  whole-affinity einsum (benchmarks/README.md). The chunk is the largest divisor of P not above `query_chunk`
  (default QUERY_CHUNK).
  """
  p = query.shape[1]
  chunk = min(p, query_chunk or QUERY_CHUNK)
  while p % chunk:
    chunk -= 1
  return _chunked(query, key, value, chunk)


def gpu_flash_attention(query: jax.Array, key: jax.Array, value: jax.Array, *, interpret: bool = False) -> jax.Array:
  """softmax(query key^T) value for (G, P, L) inputs through the Pallas GPU (Triton) flash-attention kernel.

  One head, scale 1; forward and backward are fused kernels that never hold a (P, P) affinity. Needs
  P % FLASH_BLOCK == 0. `interpret` runs the kernel in Pallas's interpreter (any backend, for tests).

  The forward kernel stages two key and two value tiles of block_k x L in shared memory; the default block_k of
  128 asks for 256 KiB at L = 128 in float32, over an H100/H200's 227 KiB (seen on an H200, NTU preset block 4),
  so block_k halves until a tile is at most 32 KiB.
  """
  heads = (query[:, :, None], key[:, :, None], value[:, :, None])  # (G, P, 1 head, L)
  block_k = FLASH_BLOCK
  padded = 1 << (query.shape[-1] - 1).bit_length()  # the kernel pads L to a power of two
  while block_k > 16 and block_k * padded * query.dtype.itemsize > 32 * 1024:
    block_k //= 2
  blocks = dataclasses.replace(gpu_attention.BlockSizes.get_default(), block_k=block_k)
  return gpu_attention.mha(*heads, None, sm_scale=1.0, block_sizes=blocks, interpret=interpret)[:, :, 0]


def tpu_flash_attention(query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
  """softmax(query key^T) value for (G, P, L) inputs through the Pallas TPU (Mosaic) flash-attention kernel.

  One head, scale 1, fused forward and backward kernels. Needs P % FLASH_BLOCK == 0. Runs on CPU under
  `jax.experimental.pallas.tpu.force_tpu_interpret_mode()` (for tests).
  """
  return tpu_attention.flash_attention(query[:, None], key[:, None], value[:, None], sm_scale=1.0)[:, 0]


def per_shard(kernel: Callable[..., jax.Array]) -> Callable[..., jax.Array]:
  """`kernel` on each device's share of the groups when traced under a multi-device mesh (`jax.set_mesh`).

  XLA cannot partition a Pallas kernel (an opaque custom call): given batch-sharded inputs it would gather the
  whole batch onto every device and run the kernel there. Groups are independent, so under a mesh the kernel is
  `jax.shard_map`ped over the group axis split across all mesh axes (the data-parallel batch); when the devices
  do not divide the groups (an initialisation batch of one), every device runs it on a full copy.
  """

  def apply(query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty or mesh.size == 1:
      return kernel(query, key, value)
    split = query.shape[0] % mesh.size == 0
    spec = jax.sharding.PartitionSpec(mesh.axis_names if split else None)
    return jax.shard_map(kernel, mesh=mesh, in_specs=(spec, spec, spec), out_specs=spec, check_vma=False)(
      query, key, value
    )

  return apply


ATTENTIONS = {
  "einsum": einsum_attention,
  "chunked": chunked_attention,
  "gpu_flash": per_shard(gpu_flash_attention),
  "tpu_flash": per_shard(tpu_flash_attention),
}


def auto_choices(kind: str, positions: int, *, kernels: bool = True) -> dict[str, str]:
  """The attention `impl="auto"` runs for `kind` and P = `positions`, per platform (keys of `ATTENTIONS`).

  - cpu: `chunked` for every kind, the fastest and leanest on XLA:CPU (benchmarks/README.md).
  - cuda, tpu: the temporal and spatial affinities are tiny (P = T or N), so one batched `einsum` over all
    groups; the spatio-temporal one (P = T*N, 4096 at NTU size: 64 MiB per clip in float32) goes through the
    platform's Pallas flash-attention kernel, or the einsum when P is not a multiple of FLASH_BLOCK or the
    kernels cannot be used (`kernels=False`, see `auto_attention`).
  - any other platform (rocm, ...): `einsum` for temporal/spatial, `chunked` (memory-safe) for spatio-temporal.
  """
  flash = kernels and positions % FLASH_BLOCK == 0
  if kind != "spatio_temporal":
    return {"cpu": "chunked", "cuda": "einsum", "tpu": "einsum", "default": "einsum"}
  return {
    "cpu": "chunked",
    "cuda": "gpu_flash" if flash else "einsum",
    "tpu": "tpu_flash" if flash else "einsum",
    "default": "chunked",
  }


def auto_attention(query: jax.Array, key: jax.Array, value: jax.Array, kind: str) -> jax.Array:
  """`auto_choices` per platform, all kept in the traced program by `jax.lax.platform_dependent`.

  The branch is picked when the program is lowered, so an exported step carries one implementation per platform
  it was lowered for and the compiler never sees the others. The Pallas kernels are used on one device, or under
  a mesh context (`jax.set_mesh` / `jax.sharding.use_abstract_mesh`), where `per_shard` runs them on each
  device's groups. A program traced without one for several devices gets the einsum instead: XLA cannot
  partition the kernels (Mosaic refuses to lower, "Mosaic kernels cannot be automatically partitioned"; Triton
  would gather the whole batch onto every device).
  """
  kernels = not jax.sharding.get_abstract_mesh().empty or jax.device_count() == 1
  choices = auto_choices(kind, query.shape[1], kernels=kernels)
  branches = {platform: ATTENTIONS[name] for platform, name in choices.items()}
  return jax.lax.platform_dependent(query, key, value, **branches)


class NonLocal(nn.Module):
  """Embedded-Gaussian non-local operation: (B, T, N, C) -> (B, T, N, features). See the module docstring.

  With kind `spatio_temporal` and a mutable `intermediates` collection, the affinity is sown as `st_affinity`,
  shape (B, T*N, T*N) with positions ordered frame-major (p = t * N + n); otherwise it is not materialised
  beyond what `impl` needs.

  Attributes:
    kind: one of `KINDS`.
    features: output channels of W_w.
    embed_ratio: L = round(embed_ratio * C), at least 1. The paper does not give L; C/2 (the default) is our
      choice, the usual one for embedded-Gaussian non-local blocks (Wang et al. 2018).
    impl: `auto` (per platform and kind, `auto_choices`), `einsum` (explicit softmax), `dot_product_attention`
      (`jax.nn.dot_product_attention`, scale 1, XLA's implementation) or `chunked` (`chunked_attention`, the
      memory-efficient one, with a hand-written backward pass). All compute the same function.
    dtype: the computation dtype (the softmax runs in float32).
  """

  kind: str
  features: int
  embed_ratio: float = 0.5
  impl: str = "auto"
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
    elif self.impl == "auto":
      y = auto_attention(query, key, value, self.kind)
    else:
      # One attention head: (G, P, L) -> (G, P, 1, L).
      y = jax.nn.dot_product_attention(query[:, :, None], key[:, :, None], value[:, :, None], scale=1.0)[:, :, 0]
    y = _ungroup(y, self.kind, x.shape)
    return nn.Dense(self.features, use_bias=False, kernel_init=nn.initializers.zeros, dtype=self.dtype, name="w")(y)
