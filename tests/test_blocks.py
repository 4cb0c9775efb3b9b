"""Local block (Fig. 3b) and SLnL block (Fig. 3c) against numpy convolutions and BatchNorm."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import load_benchmark

from configs import ntu60_xsub
from slnl_jax import models, steps
from slnl_jax.models import LocalBlock, NonLocal, SLnLBlock
from slnl_jax.models.blocks import CONV_KERNEL_GRADS, conv_matmul_kernel_grad

B, T, N = 2, 6, 5
EPS = 1e-5


def _random_variables(module, x: np.ndarray, seed: int) -> dict:
  """Variables of `module` drawn in numpy (non-zero everywhere, incl. the non-local W_w), positive variances."""
  shapes = jax.eval_shape(lambda: module.init(jax.random.key(0), x, train=False))
  rng = np.random.default_rng(seed)
  draw = lambda path, s: (
    rng.uniform(0.5, 1.5, s.shape) if path[-1].key == "var" else rng.normal(scale=0.5, size=s.shape)
  ).astype(np.float32)
  return jax.tree_util.tree_map_with_path(draw, shapes)


def _np_conv(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """'SAME' cross-correlation over (frames, joints) as an explicit sum over kernel offsets."""
  kt, kn = kernel.shape[:2]
  padded = np.pad(x, ((0, 0), (kt // 2, kt // 2), (kn // 2, kn // 2), (0, 0)))
  t, n = x.shape[1:3]
  return sum(
    padded[:, dt : dt + t, dn : dn + n] @ kernel[dt, dn].astype(np.float64) for dt in range(kt) for dn in range(kn)
  )


def _np_block(x, variables, nonlocal_branch=None, batch_stats=False):
  """Eval-mode block (running statistics), or train-mode BN statistics with `batch_stats`, no dropout."""
  p = variables["params"]
  y = x.astype(np.float64)
  for kind in ("temporal", "spatial", "spatio_temporal"):
    stage = _np_conv(y, p[f"conv_{kind}"]["kernel"])
    if nonlocal_branch is not None and f"nonlocal_{kind}" in p:
      stage = stage + nonlocal_branch(kind, p[f"nonlocal_{kind}"], y)
    y = stage
  if batch_stats:
    mean, var = y.mean(axis=(0, 1, 2)), y.var(axis=(0, 1, 2))
  else:
    mean, var = variables["batch_stats"]["bn"]["mean"], variables["batch_stats"]["bn"]["var"]
  y = np.maximum((y - mean) / np.sqrt(var + EPS) * p["bn"]["scale"] + p["bn"]["bias"], 0.0)
  shortcut = x
  if "projection" in p:
    shortcut = x @ p["projection"]["kernel"][0, 0] + p["projection"]["bias"]
  return y + shortcut


@pytest.mark.parametrize(("channels_in", "features", "kernel_size"), [(4, 6, 3), (6, 6, 3), (4, 6, 5)])
def test_local_block_matches_numpy(channels_in, features, kernel_size):
  x = np.random.default_rng(0).normal(size=(B, T, N, channels_in)).astype(np.float32)
  block = LocalBlock(features, kernel_size)
  variables = _random_variables(block, x, seed=1)
  # The residual path is a 1x1 projection exactly when the channels change.
  assert ("projection" in variables["params"]) == (channels_in != features)
  assert variables["params"]["conv_temporal"]["kernel"].shape == (kernel_size, 1, channels_in, features)
  assert variables["params"]["conv_spatial"]["kernel"].shape == (1, kernel_size, features, features)
  out = block.apply(variables, x, train=False)
  assert out.shape == (B, T, N, features)
  np.testing.assert_allclose(out, _np_block(x, variables), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("channels_in", [4, 6])
def test_slnl_block_sums_each_stage_with_its_non_local_module(channels_in):
  x = np.random.default_rng(2).normal(size=(B, T, N, channels_in)).astype(np.float32)
  features = 6
  block = SLnLBlock(features, 3)
  variables = _random_variables(block, x, seed=3)

  def nonlocal_branch(kind, params, y):
    module = NonLocal(kind, features)
    return np.asarray(module.apply({"params": params}, y.astype(np.float32)), np.float64)

  out = block.apply(variables, x, train=False)
  np.testing.assert_allclose(out, _np_block(x, variables, nonlocal_branch), rtol=1e-4, atol=1e-4)
  # The non-local branches matter: without them the output differs.
  assert np.abs(out - _np_block(x, variables)).max() > 1e-2


def test_nonlocal_kinds_select_the_stages():
  x = np.zeros((B, T, N, 4), np.float32)
  shapes = jax.eval_shape(lambda: SLnLBlock(6, nonlocal_kinds=("temporal",)).init(jax.random.key(0), x, train=False))
  assert sorted(k for k in shapes["params"] if k.startswith("nonlocal")) == ["nonlocal_temporal"]
  with pytest.raises(ValueError, match="non-local kinds"):
    SLnLBlock(6, nonlocal_kinds=("channel",))


def test_train_mode_batch_statistics_and_dropout():
  x = np.random.default_rng(4).normal(size=(B, T, N, 4)).astype(np.float32)
  block = LocalBlock(6, dropout_rate=0.0)
  variables = _random_variables(block, x, seed=5)
  out, state = block.apply(variables, x, train=True, mutable=["batch_stats"])
  np.testing.assert_allclose(out, _np_block(x, variables, batch_stats=True), rtol=1e-4, atol=1e-4)
  # Running statistics move 10 % of the way to the batch's (PyTorch momentum 0.1).
  y = x.astype(np.float64)
  for kind in ("temporal", "spatial", "spatio_temporal"):
    y = _np_conv(y, variables["params"][f"conv_{kind}"]["kernel"])
  expected_mean = 0.9 * variables["batch_stats"]["bn"]["mean"] + 0.1 * y.mean(axis=(0, 1, 2))
  np.testing.assert_allclose(state["batch_stats"]["bn"]["mean"], expected_mean, rtol=1e-4, atol=1e-5)

  dropped = LocalBlock(6, dropout_rate=0.5)
  run = lambda seed: dropped.apply(
    variables, x, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(seed)}
  )[0]
  first, again, other = run(0), run(0), run(1)
  np.testing.assert_array_equal(first, again)
  assert np.abs(first - other).max() > 1e-3
  # Inverted dropout: every output is 0 or twice the undropped value.
  kept = np.asarray(first) != 0
  assert 0.3 < kept.mean() < 0.7
  np.testing.assert_allclose(np.asarray(first)[kept], 2 * np.asarray(out)[kept], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
  ("kernel_grad", "kernel_size"),
  [("matmul", k) for k in [(1, 1), (2, 1), (3, 1), (1, 4), (5, 1), (3, 3), (2, 3), (4, 5)]] + [("auto", (3, 3))],
)
def test_matmul_kernel_grad_conv_equals_xla_conv_in_value_and_gradients(kernel_grad, kernel_size):
  """Against flax's nn.Conv on XLA's own convolution ('SAME' padding), with JAX's autodiff for its gradients.

  `auto` is the CPU branch of its jax.lax.platform_dependent here (the other platforms' branch is XLA's conv).
  """
  x = np.random.default_rng(4).normal(size=(2, 7, 6, 4)).astype(np.float32)
  ours = nn.Conv(5, kernel_size, padding="SAME", use_bias=False, conv_general_dilated=CONV_KERNEL_GRADS[kernel_grad])
  xla = nn.Conv(5, kernel_size, padding="SAME", use_bias=False)
  variables = xla.init(jax.random.PRNGKey(0), x)

  def loss(conv, variables, x):
    return jnp.sum(jnp.sin(conv.apply(variables, x)))

  np.testing.assert_allclose(ours.apply(variables, x), xla.apply(variables, x), rtol=1e-5, atol=1e-5)
  for got, want in zip(
    jax.grad(loss, argnums=(1, 2))(ours, variables, x), jax.grad(loss, argnums=(1, 2))(xla, variables, x), strict=True
  ):
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
      np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_matmul_kernel_grad_conv_rejects_strides():
  x = np.zeros((1, 4, 4, 2), np.float32)
  with pytest.raises(NotImplementedError, match="stride 1"):
    nn.Conv(3, (3, 3), strides=2, conv_general_dilated=conv_matmul_kernel_grad).init(jax.random.PRNGKey(0), x)


def test_convolution_benchmark_shapes_are_the_models():
  """benchmarks/local_convolutions.py derives each block's convolutions from the config by hand; the model, traced
  with every local convolution intercepted, must give it exactly those shapes (once per stream)."""
  benchmark = load_benchmark("local_convolutions")
  config = ntu60_xsub.get_config()
  seen = []

  def record(next_fun, args, kwargs, context):
    module = context.module
    if isinstance(module, nn.Conv) and module.name.startswith("conv_") and context.method_name == "__call__":
      n, t, v, c = args[0].shape
      seen.append((module.name.removeprefix("conv_"), n, t, v, c, module.features, tuple(module.kernel_size)))
    return next_fun(*args, **kwargs)

  model = models.create_model(config)
  with nn.intercept_methods(record):
    jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros(steps.input_shape(config, 3)), train=False))
  expected = [shape[1:] for shape in benchmark.conv_shapes(config, 3)]
  assert len(expected) == 3 * len(config.model.channels)
  assert sorted(seen) == sorted(expected * benchmark.STREAMS)
