"""Non-local module (Sec. 3.3, Eq. 5-10) against a naive per-position Python loop."""

import contextlib
import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_benchmark
from jax.experimental.pallas import tpu as pltpu

from configs import ntu60_xsub
from slnl_jax import models, steps
from slnl_jax.models import NonLocal, nonlocal_attention

B, T, N, C, L, FEATURES = 2, 4, 3, 6, 3, 5
KINDS = ("temporal", "spatial", "spatio_temporal")


@pytest.fixture(scope="module")
def x() -> np.ndarray:
  return np.random.default_rng(0).normal(size=(B, T, N, C)).astype(np.float32)


@pytest.fixture(scope="module")
def params() -> dict:
  rng = np.random.default_rng(1)
  dense = lambda fan_in, fan_out: {"kernel": rng.normal(size=(fan_in, fan_out)).astype(np.float32)}
  return {"params": {"varphi": dense(C, L), "psi": dense(C, L), "g": dense(C, L), "w": dense(L, FEATURES)}}


def _positions(kind: str) -> list[list[tuple[int, int]]]:
  """The groups of (t, n) positions that attend to each other; spatio-temporal ones in frame-major order."""
  if kind == "temporal":
    return [[(t, n) for t in range(T)] for n in range(N)]
  if kind == "spatial":
    return [[(t, n) for n in range(N)] for t in range(T)]
  return [[(t, n) for t in range(T) for n in range(N)]]


def _naive(kind: str, x: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
  """z_i = W_w sum_j [exp(varphi(x_i) . psi(x_j)) / sum_k exp(varphi(x_i) . psi(x_k))] g(x_j), one i at a time."""
  p = {name: np.asarray(v["kernel"], np.float64) for name, v in params["params"].items()}
  z = np.zeros((B, T, N, FEATURES))
  affinities = []
  for b in range(B):
    for group in _positions(kind):
      affinity = np.zeros((len(group), len(group)))
      for i, (ti, ni) in enumerate(group):
        query = x[b, ti, ni] @ p["varphi"]
        logits = [query @ (x[b, tj, nj] @ p["psi"]) for tj, nj in group]
        peak = max(logits)
        weights = [math.exp(logit - peak) for logit in logits]
        total = sum(weights)
        y = sum(w / total * (x[b, tj, nj] @ p["g"]) for w, (tj, nj) in zip(weights, group, strict=True))
        z[b, ti, ni] = y @ p["w"]
        affinity[i] = np.asarray(weights) / total
      affinities.append(affinity)
  return z, np.stack(affinities)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("impl", ["auto", "einsum", "dot_product_attention", "chunked"])
def test_equals_naive_loop(kind, impl, x, params):
  out = NonLocal(kind, FEATURES, embed_ratio=L / C, impl=impl).apply(params, x)
  expected, _ = _naive(kind, x, params)
  assert out.shape == (B, T, N, FEATURES)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kind", KINDS)
def test_einsum_equals_dot_product_attention(kind, params):
  x = np.random.default_rng(2).normal(size=(B, T, N, C)).astype(np.float32)
  outs = [NonLocal(kind, FEATURES, L / C, impl).apply(params, x) for impl in ("einsum", "dot_product_attention")]
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk", [1, 5, 512])
def test_chunked_matches_einsum_in_value_and_gradient(kind, chunk, params, monkeypatch):
  """Several query chunks (and a chunk size that does not divide P) give the einsum result and gradient.

  The chunked backward pass is hand-written (softmax from the saved log-sum-exp), the einsum one is JAX's
  autodiff: float32 rounding differs, so gradients are compared relative to each array's largest entry.
  """
  monkeypatch.setattr(nonlocal_attention, "QUERY_CHUNK", chunk)
  x = np.random.default_rng(3).normal(size=(B, T, N, C)).astype(np.float32)

  def loss(p, impl):
    return jnp.sum(NonLocal(kind, FEATURES, L / C, impl).apply(p, x) ** 2)

  for a, b in zip(
    jax.tree.leaves(jax.grad(loss)(params, "chunked")), jax.tree.leaves(jax.grad(loss)(params, "einsum")), strict=True
  ):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())
  np.testing.assert_allclose(loss(params, "chunked"), loss(params, "einsum"), rtol=1e-5)


@pytest.mark.parametrize("query_chunk", [3, 7, 12])
def test_chunked_query_chunk_argument_equals_a_naive_softmax(query_chunk):
  """`chunked_attention(..., query_chunk)` (benchmarks/nonlocal_attention.py sweeps it) against a per-row loop."""
  rng = np.random.default_rng(5)
  q, k, v = (rng.normal(size=(2, 12, 4)).astype(np.float32) for _ in range(3))
  expected = np.zeros_like(v)
  for g in range(2):
    for i in range(12):
      logits = np.array([q[g, i] @ k[g, j] for j in range(12)], np.float64)
      weights = np.exp(logits - logits.max())
      expected[g, i] = (weights / weights.sum()) @ v[g]
  out = nonlocal_attention.chunked_attention(jnp.asarray(q), jnp.asarray(k), jnp.asarray(v), query_chunk)
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def _flash_shaped(seed: int) -> list[jax.Array]:
  """(G, P, L) query, key, value with P a multiple of the flash kernels' block, at the non-local's scale."""
  rng = np.random.default_rng(seed)
  return [jnp.asarray(rng.normal(size=(2, nonlocal_attention.FLASH_BLOCK, 16)).astype(np.float32)) for _ in range(3)]


@pytest.mark.parametrize(
  "name",
  [
    "chunked",
    "gpu_flash",  # in Pallas's interpreter on CPU
    "tpu_flash",  # in Pallas's TPU interpreter on CPU
    "auto_spatio_temporal",  # the CPU branch of jax.lax.platform_dependent
  ],
)
def test_every_implementation_matches_the_einsum_in_value_and_gradients(name):
  """Each attention `auto` can choose (auto_choices) against the einsum and JAX's autodiff of it."""
  query, key, value = _flash_shaped(4)
  attention = {
    "chunked": nonlocal_attention.chunked_attention,
    "gpu_flash": functools.partial(nonlocal_attention.gpu_flash_attention, interpret=True),
    "tpu_flash": nonlocal_attention.tpu_flash_attention,
    "auto_spatio_temporal": functools.partial(nonlocal_attention.auto_attention, kind="spatio_temporal"),
  }[name]
  weights = jnp.cos(jnp.arange(query.size).reshape(query.shape))

  def loss(fn, *args):
    return jnp.sum(fn(*args) * weights)

  # The TPU interpreter only for the TPU kernel: it would also take over the GPU kernel's pallas_call.
  with pltpu.force_tpu_interpret_mode() if name == "tpu_flash" else contextlib.nullcontext():
    got = attention(query, key, value)
    got_grads = jax.grad(functools.partial(loss, attention), argnums=(0, 1, 2))(query, key, value)
  want = nonlocal_attention.einsum_attention(query, key, value)
  want_grads = jax.grad(functools.partial(loss, nonlocal_attention.einsum_attention), argnums=(0, 1, 2))(
    query, key, value
  )
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  for a, b in zip(got_grads, want_grads, strict=True):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5 * np.abs(b).max())


@pytest.mark.skipif(
  jax.default_backend() != "gpu", reason="needs a GPU: the compiled Triton kernel, not the interpreter"
)
@pytest.mark.parametrize("dtype, tolerance", [(jnp.float32, 2e-3), (jnp.bfloat16, 2e-2)])
@pytest.mark.parametrize("positions, channels", [(4096, 32), (1024, 64), (256, 128)])  # NTU blocks 0-1, 2-3, 4
def test_gpu_flash_kernel_on_a_gpu_matches_the_einsum(positions, channels, dtype, tolerance):
  """The compiled Pallas GPU kernel at the model's shapes against the float32 einsum on the same rounded inputs.

  Relative Frobenius error of the output and of each gradient: float32 lands near 1e-4 with the matrix units'
  tf32 products, bfloat16 operands near 1e-3 to 1e-2.
  """
  rng = np.random.default_rng(positions + channels)
  # Embeddings of unit-variance features: logits of order sqrt(L), as in the model.
  query, key, value = (jnp.asarray(rng.normal(size=(4, positions, channels)) / channels**0.25, dtype) for _ in range(3))
  weights = jnp.asarray(rng.normal(size=query.shape), jnp.float32)

  def loss(fn, *args):
    return jnp.sum(fn(*args).astype(jnp.float32) * weights)

  def reference(q, k, v):
    with jax.default_matmul_precision("highest"):
      return nonlocal_attention.einsum_attention(*(a.astype(jnp.float32) for a in (q, k, v)))

  got = jax.jit(nonlocal_attention.gpu_flash_attention)(query, key, value)
  want = jax.jit(reference)(query, key, value)
  got_grads = jax.jit(jax.grad(functools.partial(loss, nonlocal_attention.gpu_flash_attention), (0, 1, 2)))(
    query, key, value
  )
  want_grads = jax.jit(jax.grad(functools.partial(loss, reference), (0, 1, 2)))(query, key, value)
  for name, a, b in zip(("output", "d query", "d key", "d value"), (got, *got_grads), (want, *want_grads), strict=True):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.isfinite(a).all(), name
    error = np.linalg.norm(a - b) / np.linalg.norm(b)
    assert error < tolerance, f"{name}: relative error {error:.2e}"


def test_auto_choices_per_platform_and_kind():
  """The table in benchmarks/README.md: tiny affinities batched on accelerators, the big one through flash."""
  block = nonlocal_attention.FLASH_BLOCK
  for kind in ("temporal", "spatial"):
    assert nonlocal_attention.auto_choices(kind, 64) == {
      "cpu": "chunked",
      "cuda": "einsum",
      "tpu": "einsum",
      "default": "einsum",
    }
  assert nonlocal_attention.auto_choices("spatio_temporal", 32 * block) == {
    "cpu": "chunked",
    "cuda": "gpu_flash",
    "tpu": "tpu_flash",
    "default": "chunked",
  }
  off_block = nonlocal_attention.auto_choices("spatio_temporal", 3 * block // 2)
  assert (off_block["cuda"], off_block["tpu"]) == ("einsum", "einsum")
  no_kernels = nonlocal_attention.auto_choices("spatio_temporal", 32 * block, kernels=False)
  assert (no_kernels["cpu"], no_kernels["cuda"], no_kernels["tpu"]) == ("chunked", "einsum", "einsum")


@pytest.mark.parametrize("impl", ["einsum", "dot_product_attention"])
def test_spatio_temporal_affinity_is_sown(impl, x, params):
  module = NonLocal("spatio_temporal", FEATURES, L / C, impl)
  _, state = module.apply(params, x, mutable=["intermediates"])
  (affinity,) = state["intermediates"]["st_affinity"]
  _, expected = _naive("spatio_temporal", x, params)
  assert affinity.shape == (B, T * N, T * N)
  np.testing.assert_allclose(affinity, expected, rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(affinity.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["temporal", "spatial"])
def test_only_spatio_temporal_affinity_is_sown(kind, x, params):
  _, state = NonLocal(kind, FEATURES, L / C).apply(params, x, mutable=["intermediates"])
  assert not state.get("intermediates")


def test_initial_output_is_zero_and_embedding_width(x):
  # W_w starts at zero so an SLnL block starts as its local block; L = round(embed_ratio * C).
  module = NonLocal("spatial", FEATURES, embed_ratio=0.5)
  variables = module.init(jax.random.key(0), x)
  shapes = jax.tree.map(jnp.shape, variables["params"])
  assert shapes == {
    "varphi": {"kernel": (C, C // 2)},
    "psi": {"kernel": (C, C // 2)},
    "g": {"kernel": (C, C // 2)},
    "w": {"kernel": (C // 2, FEATURES)},
  }
  np.testing.assert_array_equal(module.apply(variables, x), 0.0)


def test_bfloat16_close_to_float32(x, params):
  expected, _ = _naive("spatio_temporal", x, params)
  out = NonLocal("spatio_temporal", FEATURES, L / C, dtype=jnp.bfloat16).apply(params, x)
  assert out.dtype == jnp.bfloat16
  scale = np.abs(expected).max()
  np.testing.assert_allclose(np.asarray(out, np.float32), expected, atol=0.05 * scale)


@pytest.mark.parametrize(("field", "value"), [("kind", "channel"), ("impl", "flash")])
def test_bad_settings_are_rejected(field, value, x):
  kwargs = {"kind": "spatial", "features": FEATURES, field: value}
  with pytest.raises(ValueError, match=value):
    NonLocal(**kwargs).init(jax.random.key(0), x)


def test_attention_benchmark_shapes_are_the_models():
  """benchmarks/nonlocal_attention.py derives each block's (kind, G, P, L) from the config by hand; the model,
  traced with every NonLocal call intercepted, must give it exactly those shapes (once per stream)."""
  benchmark = load_benchmark("nonlocal_attention")

  config = ntu60_xsub.get_config()
  seen = []

  def record(next_fun, args, kwargs, context):
    if isinstance(context.module, NonLocal) and context.method_name == "__call__":
      b, t, n, c = args[0].shape
      groups, positions = {"temporal": (b * n, t), "spatial": (b * t, n), "spatio_temporal": (b, t * n)}[
        context.module.kind
      ]
      seen.append((context.module.kind, groups, positions, max(1, round(context.module.embed_ratio * c))))
    return next_fun(*args, **kwargs)

  model = models.create_model(config)
  with nn.intercept_methods(record):
    jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(steps.input_shape(config, 3)), train=False))
  expected = [shape[1:] for shape in benchmark.attention_shapes(config, 3, list(config.model.nonlocal_kinds))]
  assert sorted(seen) == sorted(expected * benchmark.STREAMS)
