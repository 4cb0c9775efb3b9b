"""SLnL-rFA end to end (Fig. 1): shapes, parameter counts, streams, person merge, heads, dtypes, gradients."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from configs import default, kinetics, ntu60_xsub
from slnl_jax.models import HEADS, count_params, create_model, model_summary
from slnl_jax.models.slnl_rfa import Architecture, merge_persons

B, M, T, V, C = 2, 2, 8, 5, 3
NUM_CLASSES = 4


def _tiny_config(**model_overrides) -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset.update(num_classes=NUM_CLASSES, num_persons=M, num_frames=T, num_joints=V, num_channels=C)
  config.model.update(
    num_joints_out=6,
    num_systems=2,
    fa_reduction=4,
    channels=(8, 12),
    kernel_sizes=(3, 3),
    num_slnl_blocks=1,
    pool_every=1,
    **model_overrides,
  )
  return config


def _random_variables(model, shape: tuple[int, ...], seed: int = 0) -> dict:
  """Variables drawn in numpy, scaled by 1/sqrt(fan-in): no init compile, and non-zero non-local W_w."""
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros(shape), train=False))
  rng = np.random.default_rng(seed)

  def draw(path, s):
    name = path[-1].key
    if name == "var":
      return rng.uniform(0.5, 1.5, s.shape).astype(np.float32)
    if name == "scale":
      return rng.uniform(0.5, 1.5, s.shape).astype(np.float32)
    fan_in = np.prod(s.shape[:-1]) if name == "kernel" else 1
    return (rng.normal(size=s.shape) / np.sqrt(fan_in)).astype(np.float32)

  return jax.tree_util.tree_map_with_path(draw, shapes)


def _clips(seed: int, persons: int = M) -> np.ndarray:
  return np.random.default_rng(seed).normal(size=(B, persons, T, V, C)).astype(np.float32)


@pytest.fixture(scope="module")
def model():
  return create_model(_tiny_config())


@pytest.fixture(scope="module")
def variables(model):
  return _random_variables(model, (B, M, T, V, C))


@pytest.fixture(scope="module")
def forward(model):
  """Evaluation-mode forward returning the logits and every module's output plus the sown intermediates."""
  return jax.jit(
    lambda variables, x: model.apply(variables, x, train=False, capture_intermediates=True, mutable=["intermediates"])
  )


def test_outputs_are_float32_logits_and_deterministic(forward, variables):
  x = _clips(0)
  (logits, _), (again, _) = forward(variables, x), forward(variables, x)
  assert set(logits) == {"position", "velocity", "concat"} == set(HEADS)
  for name, value in logits.items():
    assert value.shape == (B, NUM_CLASSES) and value.dtype == jnp.float32
    assert np.isfinite(value).all()
    np.testing.assert_array_equal(value, again[name])


def test_heads_classify_the_max_merged_stream_features(forward, variables):
  logits, state = forward(variables, _clips(1))
  inter = state["intermediates"]
  p = variables["params"]
  merged = {}
  for name in ("position", "velocity"):
    (per_person,) = inter[f"{name}_stream"]["__call__"]
    merged[name] = np.asarray(per_person).reshape(B, M, -1).max(axis=1)
  merged["concat"] = np.concatenate([merged["position"], merged["velocity"]], axis=-1)
  for name, features in merged.items():
    head = p[f"head_{name}"]
    np.testing.assert_allclose(logits[name], features @ head["kernel"] + head["bias"], rtol=1e-5, atol=1e-5)


def test_velocity_stream_reads_forward_frame_differences(model, forward):
  # With identity data BN (zero mean, unit variance, scale 1, bias 0), its output is the stream input.
  variables = _random_variables(model, (B, M, T, V, C), seed=2)
  for stream in ("position_stream", "velocity_stream"):
    variables["params"][stream]["data_bn"] = {
      "scale": np.ones(V * C, np.float32),
      "bias": np.zeros(V * C, np.float32),
    }
    variables["batch_stats"][stream]["data_bn"] = {
      "mean": np.zeros(V * C, np.float32),
      "var": np.full(V * C, 1 - 1e-5, np.float32),
    }
  x = _clips(3)
  logits, state = forward(variables, x)
  (seen,) = state["intermediates"]["velocity_stream"]["data_bn"]["__call__"]
  expected = np.zeros_like(x)
  expected[:, :, :-1] = x[:, :, 1:] - x[:, :, :-1]  # v_t = x_{t+1} - x_t, v_{T-1} = 0
  np.testing.assert_allclose(np.asarray(seen).reshape(x.shape), expected, rtol=1e-5, atol=1e-5)
  # A constant offset of every frame moves the position stream but not the velocity stream.
  shifted, _ = forward(variables, x + np.float32(0.7))
  np.testing.assert_allclose(shifted["velocity"], logits["velocity"], rtol=1e-5, atol=1e-5)
  assert np.abs(shifted["position"] - logits["position"]).max() > 1e-3


def test_persons_share_weights_and_absent_persons_are_ignored(forward, variables):
  x = _clips(4)
  two, _ = forward(variables, x)
  swapped, _ = forward(variables, x[:, ::-1])
  padded, _ = forward(variables, np.concatenate([x[:, :1], np.zeros_like(x[:, :1])], axis=1))
  one, _ = forward(variables, x[:, :1])
  for name in two:
    # Order of persons does not matter; a zero-padded slot gives the one-person result.
    np.testing.assert_allclose(swapped[name], two[name], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(padded[name], one[name], rtol=1e-5, atol=1e-5)
    assert np.abs(two[name] - one[name]).max() > 1e-3


def test_merge_persons_hand_worked():
  features = np.array([[[1.0, -5.0], [3.0, -7.0]], [[-2.0, 4.0], [9.0, 9.0]], [[-1.0, 2.0], [-3.0, 0.0]]])
  present = np.array([[True, True], [True, False], [False, False]])
  expected = np.array([[3.0, -5.0], [-2.0, 4.0], [-1.0, 2.0]])  # all absent: max over both slots
  np.testing.assert_array_equal(merge_persons(features, present), expected)


def test_intermediates_paths_and_shapes(forward, variables):
  _, state = forward(variables, _clips(5))
  for stream in ("position_stream", "velocity_stream"):
    inter = state["intermediates"][stream]
    for name in ("fa_mask_cos", "fa_mask_sin"):
      (mask,) = inter["frequency_attention"][name]
      assert mask.shape == (B * M, T, 6)
      assert 0 < mask.min() and mask.max() < 1
    # Block 0 sees the full T x N' map; only SLnL blocks sow an affinity.
    (affinity,) = inter["block_0"]["nonlocal_spatio_temporal"]["st_affinity"]
    assert affinity.shape == (B * M, T * 6, T * 6)
    np.testing.assert_allclose(affinity.sum(-1), 1.0, atol=1e-5)
    assert "nonlocal_spatio_temporal" not in inter["block_1"]


def test_without_the_transform_network_the_input_joints_reach_frequency_attention():
  """The ablation `transform_network=False`: no transform parameters, and rFA's masks span the V input joints."""
  model = create_model(_tiny_config(transform_network=False))
  variables = _random_variables(model, (B, M, T, V, C))
  _, state = model.apply(variables, _clips(5), train=False, mutable=["intermediates"])
  for stream in ("position_stream", "velocity_stream"):
    assert "transform" not in variables["params"][stream]
    (mask,) = state["intermediates"][stream]["frequency_attention"]["fa_mask_cos"]
    assert mask.shape == (B * M, T, V)


def test_variants_share_the_parameter_tree_and_agree(forward, variables):
  x = _clips(6)
  reference, _ = forward(variables, x)
  for overrides in ({"remat": True}, {"nonlocal_impl": "dot_product_attention"}, {"conv_kernel_grad": "xla"}):
    variant = create_model(_tiny_config(**overrides))
    out = jax.jit(functools.partial(variant.apply, train=False))(variables, x)
    for name in reference:
      np.testing.assert_allclose(out[name], reference[name], rtol=1e-4, atol=1e-5, err_msg=str(overrides))


def test_gradients_are_finite_and_dropout_is_active(variables):
  model = create_model(_tiny_config(remat=True))
  x = _clips(7)

  @jax.jit
  def loss_and_grad(params, key):
    def loss(params):
      logits, state = model.apply(
        {"params": params, "batch_stats": variables["batch_stats"]},
        x,
        train=True,
        rngs={"dropout": key},
        mutable=["batch_stats"],
      )
      return sum(jax.nn.logsumexp(v, axis=-1).mean() for v in logits.values()), (logits, state)

    return jax.value_and_grad(loss, has_aux=True)(params)

  (value, (logits, state)), grads = loss_and_grad(variables["params"], jax.random.key(0))
  (_, (other_logits, _)), _ = loss_and_grad(variables["params"], jax.random.key(1))
  assert np.isfinite(value)
  leaves = jax.tree_util.tree_leaves_with_path(grads)
  assert all(np.isfinite(g).all() for _, g in leaves)
  zero = [jax.tree_util.keystr(path) for path, g in leaves if not np.any(g)]
  assert not zero, f"parameters without gradient: {zero}"
  assert np.abs(logits["concat"] - other_logits["concat"]).max() > 1e-4
  moved = state["batch_stats"]["position_stream"]["data_bn"]["mean"]
  assert np.abs(moved - variables["batch_stats"]["position_stream"]["data_bn"]["mean"]).max() > 1e-4


def test_bfloat16_compute_returns_float32_logits(forward, variables):
  config = _tiny_config()
  config.dtype = "bfloat16"
  x = _clips(8)
  out = jax.jit(functools.partial(create_model(config).apply, train=False))(variables, x)
  reference, _ = forward(variables, x)
  for name, value in out.items():
    assert value.dtype == jnp.float32
    scale = np.abs(reference[name]).max()
    np.testing.assert_allclose(value, reference[name], atol=0.1 * scale)


def _expected_param_count(config: ml_collections.ConfigDict) -> int:
  """Hand count: data BN, transform, FA masks, blocks (convs, BN, projection, non-local), three heads."""
  m, d = config.model, config.dataset
  v, c, t, n_out = d.num_joints, d.num_channels, d.num_frames, m.num_joints_out
  stream = 2 * v * c + v * n_out + c * m.num_systems * c
  positions = t * n_out
  hidden = positions // m.fa_reduction
  networks = {"none": 0, "amplitude": 1, "shared": 1, "dependent": 2, "residual": 2}
  stream += networks[m.frequency_attention] * (2 * positions * hidden + hidden + positions)
  c_in = m.num_systems * c
  for i, (c_out, k) in enumerate(zip(m.channels, m.kernel_sizes, strict=True)):
    stream += k * c_in * c_out + k * c_out * c_out + k * k * c_out * c_out + 2 * c_out
    if c_in != c_out:
      stream += c_in * c_out + c_out
    if i < m.num_slnl_blocks:
      for kind, c_stage in (("temporal", c_in), ("spatial", c_out), ("spatio_temporal", c_out)):
        if kind in m.nonlocal_kinds:
          embed = round(m.embed_ratio * c_stage)
          stream += 3 * c_stage * embed + embed * c_out
    c_in = c_out
  heads = 2 * (c_in * d.num_classes + d.num_classes) + 2 * c_in * d.num_classes + d.num_classes
  return 2 * stream + heads


@pytest.mark.parametrize("preset", [ntu60_xsub, kinetics])
def test_presets_shapes_and_parameter_counts(preset):
  config = preset.get_config()
  d = config.dataset
  model = create_model(config)
  x = jax.ShapeDtypeStruct((2, d.num_persons, d.num_frames, d.num_joints, d.num_channels), jnp.float32)
  variables = jax.eval_shape(lambda x: model.init(jax.random.key(0), x, train=False), x)
  logits = jax.eval_shape(functools.partial(model.apply, train=False), variables, x)
  assert {k: v.shape for k, v in logits.items()} == {k: (2, d.num_classes) for k in logits}
  assert count_params(variables["params"]) == _expected_param_count(config)
  blocks = [k for k in variables["params"]["position_stream"] if k.startswith("block_")]
  assert len(blocks) == len(config.model.channels)


def test_preset_settings():
  ntu, kin = ntu60_xsub.get_config(), kinetics.get_config()
  assert (len(ntu.model.channels), ntu.model.num_slnl_blocks) == (6, 5)
  assert kin.model.channels == (64, 64, 128, 128, 256, 256, 512, 512)
  assert kin.model.kernel_sizes[:2] == (5, 5) and set(kin.model.kernel_sizes[2:]) == {3}
  assert (kin.dataset.num_joints, kin.dataset.num_channels, kin.dataset.num_classes) == (18, 3, 400)
  assert kin.dataset.num_frames == 128


def test_model_summary_reports_parameters_and_flops(model, variables):
  line = model_summary(model, variables, (1, 1, T, V, C))
  assert "\n" not in line
  assert f"{_expected_param_count(_tiny_config()):,} parameters" in line
  # At least the convolutions' multiply-adds: 2 per MAC, both streams, blocks at (8 x 6) and (4 x 3).
  convs = sum(
    2 * positions * (3 * c_in * c_out + 3 * c_out * c_out + 9 * c_out * c_out)
    for positions, c_in, c_out in ((8 * 6, 6, 8), (4 * 3, 8, 12))
  )
  gflops = float(line.split(" GFLOPs")[0].rsplit(" ", 1)[-1])
  assert 2 * convs / 1e9 <= gflops < 20 * convs / 1e9


@pytest.mark.parametrize(
  ("key", "value", "match"),
  [
    ("kernel_sizes", (3,), "kernel_sizes"),
    ("num_slnl_blocks", 3, "num_slnl_blocks"),
    ("pool_every", 0, "pool_every"),
    ("nonlocal_implementation", "einsum", r"config\.model\.nonlocal_implementation is not a setting of SLnLrFA"),
  ],
)
def test_bad_model_config_is_rejected(key, value, match):
  config = _tiny_config()
  config.model[key] = value
  with pytest.raises(ValueError, match=match):
    create_model(config)


def test_config_model_declares_the_module_settings_and_defaults():
  """configs/default.py `config.model` has exactly the module's settings (besides dtype), with equal defaults."""
  fields = {f.name: f.default for f in dataclasses.fields(Architecture) if f.name not in ("parent", "name", "dtype")}
  config = default.get_config().model
  assert {name: tuple(v) if isinstance(v, list | tuple) else v for name, v in config.items()} == fields
