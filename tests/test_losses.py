"""Losses against the paper's formulas evaluated independently (numpy float64, hand-worked values)."""

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from slnl_jax import losses


def _np_log_softmax(z: np.ndarray) -> np.ndarray:
  z = z.astype(np.float64)
  z = z - z.max(axis=-1, keepdims=True)
  return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


@pytest.fixture
def batch():
  rng = np.random.default_rng(0)
  logits = rng.normal(scale=3.0, size=(16, 7)).astype(np.float32)
  labels = rng.integers(0, 7, size=16)
  return logits, labels


def test_hand_worked_two_class_example():
  # Two equal logits: p_t = 1/2. With m = 0.4, gamma = 2:
  # SMFL = log(e^0.4 + (1 - e^0.4)/2) - (1/2)^2 log(1/2) = log((e^0.4 + 1)/2) + log(2)/4.
  logits, labels = jnp.zeros((1, 2)), jnp.array([1])
  expected_smfl = math.log((math.exp(0.4) + 1) / 2) + math.log(2) / 4
  expected_smce = math.log((math.exp(0.4) + 1) / 2) + math.log(2)
  np.testing.assert_allclose(losses.smfl(logits, labels)[0], expected_smfl, rtol=1e-6)
  np.testing.assert_allclose(losses.smce(logits, labels, margin=0.4)[0], expected_smce, rtol=1e-6)
  np.testing.assert_allclose(losses.focal_loss(logits, labels)[0], math.log(2) / 4, rtol=1e-6)
  np.testing.assert_allclose(losses.cross_entropy(logits, labels)[0], math.log(2), rtol=1e-6)


def test_cross_entropy_matches_numpy(batch):
  logits, labels = batch
  expected = -_np_log_softmax(logits)[np.arange(len(labels)), labels]
  np.testing.assert_allclose(losses.cross_entropy(logits, labels), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("margin", [0.1, 0.4, 1.0])
def test_smce_is_margin_softmax_eq14(batch, margin):
  """Eq. 14: SMCE is -log softmax with the true logit reduced by the margin."""
  logits, labels = batch
  shifted = logits.astype(np.float64).copy()
  shifted[np.arange(len(labels)), labels] -= margin
  expected = -_np_log_softmax(shifted)[np.arange(len(labels)), labels]
  np.testing.assert_allclose(losses.smce(logits, labels, margin=margin), expected, rtol=1e-5)


@pytest.mark.parametrize("gamma", [0.5, 2.0, 3.0])
def test_smfl_with_zero_margin_is_focal_loss(batch, gamma):
  logits, labels = batch
  pt = np.exp(_np_log_softmax(logits)[np.arange(len(labels)), labels])
  expected = -((1 - pt) ** gamma) * np.log(pt)
  np.testing.assert_allclose(losses.focal_loss(logits, labels, gamma=gamma), expected, rtol=1e-4)
  np.testing.assert_allclose(losses.smfl(logits, labels, gamma=gamma, margin=0.0), expected, rtol=1e-4, atol=1e-7)


def test_focal_loss_with_zero_gamma_is_cross_entropy(batch):
  logits, labels = batch
  np.testing.assert_allclose(
    losses.focal_loss(logits, labels, gamma=0.0), losses.cross_entropy(logits, labels), rtol=1e-6
  )


def test_smfl_matches_eq16_elementwise(batch):
  logits, labels = batch
  m, gamma = 0.4, 2.0
  pt = np.exp(_np_log_softmax(logits)[np.arange(len(labels)), labels])
  expected = np.log(np.exp(m) + (1 - np.exp(m)) * pt) - (1 - pt) ** gamma * np.log(pt)
  np.testing.assert_allclose(losses.smfl(logits, labels, gamma=gamma, margin=m), expected, rtol=1e-4)


def test_one_hot_labels_equal_integer_labels(batch):
  logits, labels = batch
  one_hot = jax.nn.one_hot(labels, logits.shape[-1])
  for fn in (losses.cross_entropy, losses.focal_loss, losses.smce, losses.smfl):
    np.testing.assert_allclose(fn(logits, one_hot), fn(logits, labels), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("fn", [losses.cross_entropy, losses.focal_loss, losses.smce, losses.smfl])
def test_finite_value_and_gradient_at_extreme_logits(fn, dtype):
  # Row 0: the true class wins by 2e4 (p_t -> 1); row 1: it loses by 2e4 (p_t -> 0).
  logits = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=dtype)
  labels = jnp.array([0, 0])
  value, grad = jax.value_and_grad(lambda z: fn(z, labels, reduction="sum"))(logits)
  assert value.dtype == jnp.float32
  assert np.isfinite(np.asarray(value)) and np.all(np.isfinite(np.asarray(grad, np.float32)))
  per_example = np.asarray(fn(logits, labels))
  assert per_example[0] == pytest.approx(0.0, abs=1e-3)  # a confident correct answer costs nothing
  assert per_example[1] > 1e3  # a confident wrong one costs about the logit gap


def test_smfl_is_bounded_by_smce_and_decreasing_in_pt():
  """The focal weight (1 - p_t)^gamma <= 1, so SMFL <= SMCE; both shrink as p_t grows."""
  gaps = jnp.linspace(-8.0, 8.0, 33)
  logits = jnp.stack([gaps, jnp.zeros_like(gaps)], axis=-1)
  labels = jnp.zeros_like(gaps, dtype=jnp.int32)
  smfl, smce = losses.smfl(logits, labels), losses.smce(logits, labels)
  assert np.all(np.asarray(smfl) <= np.asarray(smce) + 1e-6)
  assert np.all(np.diff(np.asarray(smfl)) < 0) and np.all(np.diff(np.asarray(smce)) < 0)


def test_reductions_jit_and_vmap(batch):
  logits, labels = batch
  per_example = losses.smfl(logits, labels)
  assert per_example.shape == (16,)
  np.testing.assert_allclose(losses.smfl(logits, labels, reduction="mean"), per_example.mean(), 1e-6)
  np.testing.assert_allclose(losses.smfl(logits, labels, reduction="sum"), per_example.sum(), 1e-5)
  jitted = jax.jit(lambda z, y: losses.smfl(z, y))(logits, labels)
  mapped = jax.vmap(lambda z, y: losses.smfl(z, y))(logits, labels)
  np.testing.assert_allclose(jitted, per_example, rtol=1e-5)
  np.testing.assert_allclose(mapped, per_example, rtol=1e-6)
  with pytest.raises(ValueError, match="reduction"):
    losses.smfl(logits, labels, reduction="average")


def test_multitask_loss_sums_the_heads(batch):
  logits, labels = batch
  heads = {"position": logits, "velocity": logits * 0.5, "concat": -logits}
  loss_fn = losses.get_loss_fn(ml_collections.ConfigDict({"name": "smfl", "gamma": 2.0, "margin": 0.4}))
  total, per_head = losses.multitask_loss(heads, labels, loss_fn)
  expected = {k: float(np.mean(losses.smfl(v, labels))) for k, v in heads.items()}
  assert set(per_head) == set(heads)
  for name, value in expected.items():
    assert float(per_head[name]) == pytest.approx(value, rel=1e-6)
  assert float(total) == pytest.approx(sum(expected.values()), rel=1e-6)


def test_label_smoothing_of_ce_is_the_cross_entropy_of_smoothed_labels(batch):
  logits, labels = batch
  config = ml_collections.ConfigDict({"name": "cross_entropy", "gamma": 2.0, "margin": 0.4, "label_smoothing": 0.1})
  got = losses.get_loss_fn(config)(logits, labels)
  # By hand: targets (1 - eps) one_hot + eps / K, loss -sum_k target_k log softmax_k.
  log_probs = _np_log_softmax(np.asarray(logits, np.float64))
  targets = 0.9 * np.eye(log_probs.shape[-1])[np.asarray(labels)] + 0.1 / log_probs.shape[-1]
  np.testing.assert_allclose(got, -(targets * log_probs).sum(-1), rtol=1e-5)


def test_label_smoothing_of_smfl_adds_the_uniform_term(batch):
  logits, labels = batch
  config = ml_collections.ConfigDict({"name": "smfl", "gamma": 2.0, "margin": 0.6, "label_smoothing": 0.2})
  got = losses.get_loss_fn(config)(logits, labels)
  log_probs = _np_log_softmax(np.asarray(logits, np.float64))
  p_t = np.exp(log_probs[np.arange(len(log_probs)), np.asarray(labels)])
  smfl = np.log(np.exp(0.6) + (1 - np.exp(0.6)) * p_t) - (1 - p_t) ** 2 * np.log(p_t)  # Eq. 16
  np.testing.assert_allclose(got, 0.8 * smfl + 0.2 * -log_probs.mean(-1), rtol=1e-5)


def test_a_loss_config_saved_before_label_smoothing_is_unsmoothed(batch):
  logits, labels = batch
  got = losses.get_loss_fn(ml_collections.ConfigDict({"name": "smce", "gamma": 2.0, "margin": 0.4}))(logits, labels)
  np.testing.assert_array_equal(got, losses.smce(logits, labels, margin=0.4))


def test_unknown_loss_name_is_named():
  with pytest.raises(ValueError, match=r"config\.loss\.name.*'smfll'"):
    losses.get_loss_fn(ml_collections.ConfigDict({"name": "smfll", "gamma": 2.0, "margin": 0.4}))


def test_top_level_import():
  from slnl_jax import smfl

  assert smfl is losses.smfl
