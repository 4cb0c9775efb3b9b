"""Mixed precision (`config.dtype = "bfloat16"`): what stays float32, and bf16 training tracking float32."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import demo
from slnl_jax import losses, models, sharding, steps
from slnl_jax.data import synthetic

# Primitives of softmax, log-sum-exp, sigmoid and the losses: float32 in every branch of the traced step.
_FLOAT32_ONLY = {"exp", "exp2", "log", "log1p", "expm1", "logistic"}
# Stated tolerance of bf16 against float32 over the same steps, batches and initialisation.
LOSS_TOLERANCE = 0.05  # relative, at every step
ACCURACY_TOLERANCE = 0.1  # absolute, held-out top-1 after training


def _config(dtype: str):
  """configs/demo.py shrunk so that compiling the step twice stays cheap: one SLnL block and one local block."""
  config = demo.get_config()
  config.dtype = dtype
  config.dataset.num_frames = 16
  config.model.channels = (16, 16)
  config.model.kernel_sizes = (3, 3)
  config.model.num_slnl_blocks = 1
  config.train.learning_rate = 3e-3
  return config


def _clips(num: int, frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  """The demo's synthetic skeletons (slnl_jax/data/synthetic.py), linearly resized to `frames`: (B, 2, T, 25, 3)."""
  rng = np.random.default_rng(seed)
  skeletons, labels = [], []
  for _ in range(num):
    action = int(rng.integers(1, len(synthetic.CLASSES) + 1))
    sample = synthetic.make_sample(
      rng,
      action=action,
      setup=1,
      camera=int(rng.integers(1, 4)),
      subject=int(rng.integers(1, 41)),
      replication=1,
      num_frames=48,
    )
    joints = sample.joints  # (T0, bodies, 25, 3)
    position = np.linspace(0, len(joints) - 1, frames)
    lo = np.floor(position).astype(int)
    hi = np.minimum(lo + 1, len(joints) - 1)
    weight = (position - lo)[:, None, None, None]
    resized = (1 - weight) * joints[lo] + weight * joints[hi]
    clip = np.zeros((2, frames, 25, 3), np.float32)
    clip[: resized.shape[1]] = np.swapaxes(resized, 0, 1)
    skeletons.append(clip)
    labels.append(action - 1)
  return np.stack(skeletons), np.asarray(labels, np.int32)


def _step_parts(config, *, abstract: bool = False):
  """The mesh, model, learning-rate schedule and train state of `config` (shapes only if `abstract`)."""
  mesh = sharding.make_mesh()
  learning_rate_fn = steps.create_learning_rate_fn(config, steps_per_epoch=1000)
  model = models.create_model(config)

  def state():
    return steps.create_train_state(config, model, steps.create_optimizer(config, learning_rate_fn), mesh)

  return mesh, model, learning_rate_fn, jax.eval_shape(state) if abstract else state()


def _equations(jaxpr):
  """Every equation of a jaxpr and of the jaxprs nested in it (cond branches, loops, custom VJPs, kernels)."""
  for eqn in jaxpr.eqns:
    yield eqn
    for value in eqn.params.values():
      for sub in value if isinstance(value, tuple | list) else (value,):
        if isinstance(sub, jax.extend.core.ClosedJaxpr):
          yield from _equations(sub.jaxpr)
        elif isinstance(sub, jax.extend.core.Jaxpr):
          yield from _equations(sub)


def test_bfloat16_keeps_params_statistics_fft_softmax_and_losses_in_float32():
  config = _config("bfloat16")
  _, _, learning_rate_fn, state = _step_parts(config, abstract=True)
  x, y = _clips(4, config.dataset.num_frames, seed=0)
  step = functools.partial(steps.train_step, loss_fn=losses.get_loss_fn(config.loss), learning_rate_fn=learning_rate_fn)
  batch = {"skeleton": x, "label": y}
  new_state, metrics = jax.eval_shape(step, state, batch)
  for tree in (state.params, state.batch_stats, new_state.params, new_state.batch_stats, new_state.opt_state):
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.floating)}
    assert dtypes == {jnp.dtype(jnp.float32)}
  assert {m.dtype for m in jax.tree.leaves(metrics)} <= {jnp.dtype(jnp.float32)}

  equations = list(_equations(jax.make_jaxpr(step)(state, batch).jaxpr))
  below_float32 = [
    (eqn.primitive.name, v.aval.dtype)
    for eqn in equations
    if eqn.primitive.name in _FLOAT32_ONLY
    for v in eqn.invars
    if v.aval.dtype == jnp.bfloat16
  ]
  assert not below_float32
  ffts = [eqn.invars[0].aval.dtype for eqn in equations if eqn.primitive.name == "fft"]
  assert ffts and set(ffts) == {jnp.dtype(jnp.complex64)}
  # ... while the convolutions and matmuls do run in bfloat16.
  bf16_ops = {
    eqn.primitive.name
    for eqn in equations
    if eqn.primitive.name in ("conv_general_dilated", "dot_general") and eqn.invars[0].aval.dtype == jnp.bfloat16
  }
  assert bf16_ops == {"conv_general_dilated", "dot_general"}


@pytest.fixture(scope="module")
def training_runs():
  """20 steps of batch 16 from the same initialisation and batches, float32 and bfloat16; held-out top-1."""
  num_steps, batch_size = 20, 16
  frames = _config("float32").dataset.num_frames
  x, y = _clips(num_steps * batch_size, frames, seed=1)
  x_eval, y_eval = _clips(64, frames, seed=2)
  runs = {}
  # The same float32 params and BatchNorm statistics (the dtype changes only the computation): one init.
  mesh, _, learning_rate_fn, initial = _step_parts(_config("float32"))
  for dtype in ("float32", "bfloat16"):
    config = _config(dtype)
    model = models.create_model(config)
    state = jax.tree.map(jnp.copy, initial.replace(apply_fn=model.apply))  # a copy: the step donates it
    step = steps.jit_train_step(mesh, losses.get_loss_fn(config.loss), learning_rate_fn)
    curve = []
    for i in range(num_steps):
      batch = slice(i * batch_size, (i + 1) * batch_size)
      state, metrics = step(state, {"skeleton": x[batch], "label": y[batch]})
      curve.append(float(metrics["loss"]))
    evaluate = jax.jit(functools.partial(model.apply, train=False))
    logits = evaluate({"params": state.params, "batch_stats": state.batch_stats}, x_eval)
    runs[dtype] = (np.asarray(curve), float(np.mean(np.argmax(logits["concat"], -1) == y_eval)))
  return runs


def test_bfloat16_training_tracks_float32(training_runs):
  """Loss at every step within LOSS_TOLERANCE, held-out accuracy within ACCURACY_TOLERANCE, of float32."""
  (curve32, accuracy32), (curve16, accuracy16) = training_runs["float32"], training_runs["bfloat16"]
  assert curve32[-5:].mean() < 0.7 * curve32[:5].mean(), "float32 did not learn: the comparison would be empty"
  assert accuracy32 > 2 / len(synthetic.CLASSES), "float32 held-out accuracy not above chance"
  assert not np.array_equal(curve16, curve32), "bfloat16 gave float32's exact losses: it did not run in bfloat16"
  np.testing.assert_allclose(curve16, curve32, rtol=LOSS_TOLERANCE)
  assert abs(accuracy16 - accuracy32) <= ACCURACY_TOLERANCE
