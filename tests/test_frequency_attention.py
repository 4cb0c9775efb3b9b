"""Frequency attention (Sec. 3.2, Eq. 1-4) against a direct numpy evaluation of the DFT double sums."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from slnl_jax.models import FrequencyAttention

B, T, N, C = 2, 6, 5, 3
REDUCTION = 4
HIDDEN = T * N // REDUCTION


def _mask_params(rng: np.random.Generator) -> dict:
  """FC weights of one mask network, large enough that the masks spread over (0, 1)."""
  return {
    "fc1": {
      "kernel": rng.normal(size=(T * N, HIDDEN)).astype(np.float32),
      "bias": rng.normal(size=HIDDEN).astype(np.float32),
    },
    "fc2": {
      "kernel": rng.normal(scale=0.3, size=(HIDDEN, T * N)).astype(np.float32),
      "bias": rng.normal(size=T * N).astype(np.float32),
    },
  }


def _saturated_mask_params(bias: float) -> dict:
  """FC weights whose sigmoid output is 1 (bias >> 0) or 0 (bias << 0) everywhere."""
  return {
    "fc1": {"kernel": np.zeros((T * N, HIDDEN), np.float32), "bias": np.zeros(HIDDEN, np.float32)},
    "fc2": {"kernel": np.zeros((HIDDEN, T * N), np.float32), "bias": np.full(T * N, bias, np.float32)},
  }


def _params(variant: str, make) -> dict:
  names = {"amplitude": ["fc_amplitude"], "shared": ["fc_shared"]}.get(variant, ["fc_cos", "fc_sin"])
  return {"params": {name: make() for name in names}}


def _np_mask(p: dict, spectrum: np.ndarray) -> np.ndarray:
  """sigmoid(W2 relu(W1 s + b1) + b2) of a (B, T, N) channel-averaged spectrum."""
  h = np.maximum(spectrum.reshape(B, T * N) / np.sqrt(T * N) @ p["fc1"]["kernel"] + p["fc1"]["bias"], 0.0)
  return (1.0 / (1.0 + np.exp(-(h @ p["fc2"]["kernel"] + p["fc2"]["bias"])))).reshape(B, T, N)


def _reference(variant: str, x: np.ndarray, params: dict) -> tuple[np.ndarray, dict]:
  """Eq. 1-4 written as the paper's double sums over frames t and joints n (float64)."""
  x = x.astype(np.float64)
  t, n = np.arange(T), np.arange(N)
  # theta[u, v, t, n] = 2 pi (u t / T + v n / N)
  theta = (
    2
    * np.pi
    * (
      (np.arange(T)[:, None, None, None] * t[None, None, :, None]) / T
      + (np.arange(N)[None, :, None, None] * n[None, None, None, :]) / N
    )
  )
  f_cos = np.einsum("btnc,uvtn->buvc", x, np.cos(theta))
  f_sin = -np.einsum("btnc,uvtn->buvc", x, np.sin(theta))  # F = F_cos + i F_sin
  p = params["params"]
  if variant == "amplitude":
    # aFA: the masked amplitude with zero phase (the paper: "the phase is lost").
    amplitude = np.sqrt(f_cos**2 + f_sin**2)
    mask = _np_mask(p["fc_amplitude"], amplitude.mean(-1))
    masks = {"fa_mask_amplitude": mask}
    g_cos, g_sin = mask[..., None] * amplitude, np.zeros_like(amplitude)
  else:
    fc_cos, fc_sin = (p["fc_shared"], p["fc_shared"]) if variant == "shared" else (p["fc_cos"], p["fc_sin"])
    m_cos, m_sin = _np_mask(fc_cos, f_cos.mean(-1)), _np_mask(fc_sin, f_sin.mean(-1))
    masks = {"fa_mask_cos": m_cos, "fa_mask_sin": m_sin}
    g_cos, g_sin = m_cos[..., None] * f_cos, m_sin[..., None] * f_sin
  # Re[(G_cos + i G_sin) e^{i theta}] summed over frequencies u, v, divided by T N.
  out = (np.einsum("buvc,uvtn->btnc", g_cos, np.cos(theta)) - np.einsum("buvc,uvtn->btnc", g_sin, np.sin(theta))) / (
    T * N
  )
  if variant == "residual":
    out = out + x
  return out, masks


@pytest.fixture(scope="module")
def x() -> np.ndarray:
  return np.random.default_rng(0).normal(size=(B, T, N, C)).astype(np.float32)


@pytest.mark.parametrize("variant", ["amplitude", "shared", "dependent", "residual"])
def test_fft_path_equals_dft_double_sum(variant, x):
  rng = np.random.default_rng(1)
  params = _params(variant, lambda: _mask_params(rng))
  out, state = FrequencyAttention(variant, REDUCTION).apply(params, x, mutable=["intermediates"])
  expected, expected_masks = _reference(variant, x, params)
  np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
  sown = state["intermediates"]
  assert set(sown) == set(expected_masks)
  for name, mask in expected_masks.items():
    assert sown[name][0].shape == (B, T, N)
    np.testing.assert_allclose(sown[name][0], mask, rtol=1e-4, atol=1e-5)
  # The masks are not degenerate, so the comparison exercises the attention.
  assert 0.05 < np.std(next(iter(expected_masks.values()))) and np.ptp(expected - x) > 0.1


@pytest.mark.parametrize(
  ("variant", "ones_factor", "zeros_factor"), [("residual", 2.0, 1.0), ("dependent", 1.0, 0.0), ("shared", 1.0, 0.0)]
)
def test_saturated_masks(variant, ones_factor, zeros_factor, x):
  # Masks of all ones pass the spectrum through (ifft2(fft2(X')) = X'); all zeros remove it.
  for bias, factor in ((50.0, ones_factor), (-50.0, zeros_factor)):
    params = _params(variant, lambda b=bias: _saturated_mask_params(b))
    out = FrequencyAttention(variant, REDUCTION).apply(params, x)
    np.testing.assert_allclose(out, factor * x, atol=1e-5)


def test_none_is_the_identity_without_parameters(x):
  module = FrequencyAttention("none", REDUCTION)
  variables = module.init(jax.random.key(0), x)
  assert not variables
  np.testing.assert_array_equal(module.apply(variables, x), x)


def test_variants_relate_as_in_table_4(x):
  rng = np.random.default_rng(2)
  fc = _mask_params(rng)
  dependent = FrequencyAttention("dependent", REDUCTION).apply(_params("dependent", lambda: fc), x)
  residual = FrequencyAttention("residual", REDUCTION).apply(_params("residual", lambda: fc), x)
  shared = FrequencyAttention("shared", REDUCTION).apply(_params("shared", lambda: fc), x)
  # rFA is dFA plus the residual; sFA is dFA with the cos weights reused for sin.
  np.testing.assert_allclose(residual, dependent + x, atol=1e-5)
  np.testing.assert_allclose(shared, dependent, atol=1e-5)
  other = _mask_params(rng)
  untied = FrequencyAttention("dependent", REDUCTION).apply({"params": {"fc_cos": fc, "fc_sin": other}}, x)
  assert np.abs(untied - dependent).max() > 1e-2


def test_amplitude_variant_drops_the_phase(x):
  # Masks of all ones: X'' = Re ifft2(|F|), computed here with numpy's FFT (a 1 x 1 clip of value a gives |a|).
  ones = _params("amplitude", lambda: _saturated_mask_params(50.0))
  out = FrequencyAttention("amplitude", REDUCTION).apply(ones, x)
  np.testing.assert_allclose(out, np.fft.ifft2(np.abs(np.fft.fft2(x, axes=(1, 2))), axes=(1, 2)).real, atol=1e-5)
  # A circular shift in frames and joints changes only the phase of every coefficient, so aFA cannot see it,
  # whatever its mask; dFA (cos and sin attended separately) keeps the phase and so the position.
  rng = np.random.default_rng(3)
  fc = _mask_params(rng)
  shifted = np.roll(x, (2, 1), axis=(1, 2))
  for variant, params, same in (
    ("amplitude", {"params": {"fc_amplitude": fc}}, True),
    ("dependent", {"params": {"fc_cos": fc, "fc_sin": _mask_params(rng)}}, False),
  ):
    module = FrequencyAttention(variant, REDUCTION)
    a, b = np.asarray(module.apply(params, x)), np.asarray(module.apply(params, shifted))
    assert np.allclose(a, b, atol=1e-4) == same, variant
  assert not np.allclose(out, x, atol=1e-2)  # and it is not the identity


@pytest.mark.parametrize(("variant", "networks"), [("amplitude", 1), ("shared", 1), ("dependent", 2), ("residual", 2)])
def test_parameter_count(variant, networks, x):
  shapes = jax.eval_shape(FrequencyAttention(variant, REDUCTION).init, jax.random.key(0), x)
  count = sum(leaf.size for leaf in jax.tree.leaves(shapes))
  # Two FC layers T'N' -> T'N'/lambda -> T'N' with biases, per mask network.
  assert count == networks * (2 * T * N * HIDDEN + HIDDEN + T * N)


def test_bfloat16_input_returns_bfloat16(x):
  params = _params("residual", lambda: _saturated_mask_params(50.0))
  out = FrequencyAttention("residual", REDUCTION, jnp.bfloat16).apply(params, x.astype(jnp.bfloat16))
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32), 2 * x, rtol=2e-2, atol=2e-2)


def test_unknown_variant_is_rejected(x):
  with pytest.raises(ValueError, match="frequency attention variant"):
    FrequencyAttention("phase").init(jax.random.key(0), x)


def test_initial_masks_are_not_saturated():
  """Unit-scale features at a realistic size (T' = N' = 32) give masks inside the sigmoid's working range."""
  x = np.random.default_rng(5).normal(size=(2, 32, 32, 8)).astype(np.float32)
  module = FrequencyAttention("residual")
  variables = module.init(jax.random.PRNGKey(0), x)
  _, state = module.apply(variables, x, mutable=["intermediates"])
  for name in ("fa_mask_cos", "fa_mask_sin"):
    (mask,) = state["intermediates"][name]
    assert np.mean((mask > 0.05) & (mask < 0.95)) > 0.9, name
