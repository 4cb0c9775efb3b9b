"""The train state, the optimiser and the jitted train/eval steps of SLnL-rFA (Sec. 4.1 of the paper).

The train state is replicated on every device and each global batch is split over the "data" axis of one
device mesh (slnl_jax/sharding.py); `jax.jit` compiles the pure `train_step` / `eval_step` for that layout,
so one CPU, one GPU, a TPU slice and several hosts run the same code. Optimisation follows the paper: Adam
with an L2 penalty added to the gradient (coupled weight decay, as in Adam with `weight_decay`), learning
rate decayed by `lr_decay` after every epoch, and the sum of the three heads' losses (Eq. 17-18).
`train.optimizer="sgd"` swaps Adam for the GCN papers' Nesterov momentum SGD (same L2, same schedule), and
`train.warmup_epochs` ramps the learning rate up over the first epochs as they do.

`train.mixup_alpha` > 0 trains on mixup (Zhang et al., ICLR 2018; not the paper's): each clip blended with its
batch neighbour by a weight ~ Beta(alpha, alpha) drawn per step, the loss blended likewise over the two labels.

The dropout key is `fold_in(state.rng, state.step)`, a function of the checkpointed state, so a run resumed
at any step continues bit-exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import struct
from flax.training import train_state

from slnl_jax import config_checks, losses, models, sharding

Batch = Mapping[str, jax.Array]
Metrics = dict[str, jax.Array]


class TrainState(train_state.TrainState):
  """Params, optimiser state and step (from flax), BatchNorm statistics and the run's base PRNG key."""

  batch_stats: Any
  rng: jax.Array

  def model_variables(self) -> dict[str, Any]:
    """The variables evaluation and inference use."""
    return {"params": self.params, "batch_stats": self.batch_stats}


class AveragedTrainState(TrainState):
  """A `TrainState` that also keeps exponential moving averages of params and BatchNorm statistics (`ema`,
  `config.train.ema_decay` > 0), which evaluation and inference use. A class of its own, so that the state and
  checkpoints of a run without averages keep the layout they always had."""

  ema: Any
  ema_decay: float = struct.field(pytree_node=False)

  def model_variables(self) -> dict[str, Any]:
    return self.ema


def ema_update(average: Any, current: Any, decay: float, step: jax.Array) -> Any:
  """average <- d * average + (1 - d) * current, d = min(decay, (1 + step) / (10 + step)).

  The ramp is tf.train.ExponentialMovingAverage's `num_updates`: early on, when the weights move fast, the average
  follows them; from step (10 decay - 1) / (1 - decay) on (8,990 for 0.999) it is the plain moving average.
  """
  step = step.astype(jnp.float32)
  d = jnp.minimum(decay, (1.0 + step) / (10.0 + step))
  return jax.tree.map(lambda a, c: d * a + (1.0 - d) * c, average, current)


def steps_per_epoch(config: ml_collections.ConfigDict, num_train: int) -> int:
  """Full global batches in the train split, or `config.train.steps_per_epoch` when set (must be <=)."""
  available = num_train // config.train.batch_size
  if available == 0:
    raise config_checks.ConfigError(
      f"the train split has {num_train} examples, fewer than config.train.batch_size={config.train.batch_size}"
    )
  requested = config.train.steps_per_epoch
  if requested <= 0:
    return available
  if requested > available:
    raise config_checks.ConfigError(
      f"config.train.steps_per_epoch={requested} exceeds the {available} full batches of the train "
      f"split ({num_train} examples, batch {config.train.batch_size})"
    )
  return requested


def total_steps(config: ml_collections.ConfigDict, num_train: int) -> int:
  """The global step at which training stops: `num_epochs` epochs, or `config.train.max_steps` when sooner."""
  total = config.train.num_epochs * steps_per_epoch(config, num_train)
  return min(total, config.train.max_steps) if config.train.max_steps > 0 else total


def last_epoch(step: int, steps_per_epoch: int) -> int:
  """The 0-based epoch whose steps include `step` (the epoch that a checkpoint at `step` finished or is in)."""
  return max(step - 1, 0) // steps_per_epoch


def create_learning_rate_fn(config: ml_collections.ConfigDict, steps_per_epoch: int) -> optax.Schedule:
  """lr * lr_decay ** epoch, constant within an epoch (Sec. 4.1), times min(1, (epoch + 1) / warmup_epochs)."""
  decay = optax.exponential_decay(
    init_value=config.train.learning_rate,
    transition_steps=steps_per_epoch,
    decay_rate=config.train.lr_decay,
    staircase=True,
  )
  warmup = config.train.warmup_epochs
  if not warmup:
    return decay

  def schedule(step):
    epoch = step // steps_per_epoch
    return decay(step) * jnp.minimum(1.0, (epoch + 1) / warmup)

  return schedule


def create_optimizer(
  config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule
) -> optax.GradientTransformation:
  """Adam (or Nesterov SGD) on the gradient plus weight_decay * params (the paper's L2 weight decay, coupled)."""
  if config.train.optimizer == "sgd":
    direction = optax.trace(decay=config.train.momentum, nesterov=True)
  else:
    direction = optax.scale_by_adam()
  return optax.chain(
    optax.add_decayed_weights(config.train.weight_decay),
    direction,
    optax.scale_by_learning_rate(learning_rate_fn),
  )


def input_shape(config: ml_collections.ConfigDict, batch_size: int = 1) -> tuple[int, ...]:
  """(B, M, T, V, C) of the model's input under `config`."""
  data = config.dataset
  return (batch_size, data.num_persons, data.num_frames, data.num_joints, data.num_channels)


def abstract_batch(
  config: ml_collections.ConfigDict, batch_size: int, mesh: jax.sharding.Mesh, *, evaluation: bool = False
) -> dict[str, jax.ShapeDtypeStruct]:
  """Shapes, dtypes and shardings of a global input batch, for compiling. Evaluation batches carry a "mask"
  and every clip's evaluation views: skeleton (B, S, M, T, V, C), S = len(config_checks.eval_views)."""

  def spec(shape, dtype):
    return jax.ShapeDtypeStruct(shape, dtype, sharding=sharding.batch_sharding(mesh))

  shape = input_shape(config, batch_size)
  if evaluation:
    shape = (batch_size, len(config_checks.eval_views(config.dataset)), *shape[1:])
  batch = {"skeleton": spec(shape, jnp.float32), "label": spec((batch_size,), jnp.int32)}
  if evaluation:
    batch["mask"] = spec((batch_size,), jnp.bool_)
  return batch


def create_train_state(
  config: ml_collections.ConfigDict,
  model: models.SLnLrFA,
  tx: optax.GradientTransformation,
  mesh: jax.sharding.Mesh,
) -> TrainState:
  """Initialises the model from `config.seed`, directly replicated over `mesh`."""

  def init(rng: jax.Array) -> TrainState:
    params_rng, dropout_rng, state_rng = jax.random.split(rng, 3)
    x = jnp.zeros(input_shape(config), jnp.float32)
    variables = model.init({"params": params_rng, "dropout": dropout_rng}, x, train=False)
    params, batch_stats = variables["params"], variables.get("batch_stats", {})
    kwargs = {"apply_fn": model.apply, "params": params, "batch_stats": batch_stats, "tx": tx, "rng": state_rng}
    decay = config.train.ema_decay
    if decay > 0:
      return AveragedTrainState.create(**kwargs, ema={"params": params, "batch_stats": batch_stats}, ema_decay=decay)
    return TrainState.create(**kwargs)

  # A raw uint32 key (not a typed key array) so that orbax saves it like any other array.
  return jax.jit(init, out_shardings=sharding.replicated(mesh))(jax.random.PRNGKey(config.seed))


def initial_state(
  config: ml_collections.ConfigDict, learning_rate_fn: optax.Schedule, mesh: jax.sharding.Mesh
) -> TrainState:
  """The freshly initialised state of `config`'s model with the paper's optimiser (a checkpoint's template)."""
  model = models.create_model(config)
  return create_train_state(config, model, create_optimizer(config, learning_rate_fn), mesh)


def _neighbours(batch: jax.Array) -> jax.Array:
  """Example i - 1 of the batch at position i (the last at 0): mixup's partner of each clip and of its label."""
  return jnp.roll(batch, 1, axis=0)


def mix_with_neighbour(skeleton: jax.Array, weight: jax.Array) -> jax.Array:
  """Mixup's inputs: clip i blended with clip i - 1 of the batch (clip 0 with the last), `weight` on clip i."""
  return weight * skeleton + (1.0 - weight) * _neighbours(skeleton)


def train_step(
  state: TrainState,
  batch: Batch,
  *,
  loss_fn: losses.LossFn,
  learning_rate_fn: optax.Schedule,
  mixup_alpha: float = 0.0,
) -> tuple[TrainState, Metrics]:
  """One optimiser step on a global batch; metrics are means over the whole batch.

  Returns:
    The new state and {"loss" (the sum), "<head>_loss", "<head>_top1" for each head, "grad_norm", "learning_rate"}.
  """
  dropout_rng = jax.random.fold_in(state.rng, state.step)
  skeleton, labels = batch["skeleton"], batch["label"]
  if mixup_alpha > 0:
    weight = jax.random.beta(jax.random.fold_in(dropout_rng, 1), mixup_alpha, mixup_alpha)
    skeleton = mix_with_neighbour(skeleton, weight)

  def compute_loss(params):
    outputs, updates = state.apply_fn(
      {"params": params, "batch_stats": state.batch_stats},
      skeleton,
      train=True,
      rngs={"dropout": dropout_rng},
      mutable=["batch_stats"],
    )
    total, per_head = losses.multitask_loss(outputs, labels, loss_fn)
    if mixup_alpha > 0:
      other_total, other = losses.multitask_loss(outputs, _neighbours(labels), loss_fn)
      total = weight * total + (1.0 - weight) * other_total
      per_head = {head: weight * per_head[head] + (1.0 - weight) * other[head] for head in per_head}
    return total, (outputs, per_head, updates["batch_stats"])

  grads, (outputs, per_head, batch_stats) = jax.grad(compute_loss, has_aux=True)(state.params)
  new_state = state.apply_gradients(grads=grads, batch_stats=batch_stats)
  if isinstance(state, AveragedTrainState):
    current = {"params": new_state.params, "batch_stats": batch_stats}
    new_state = new_state.replace(ema=ema_update(state.ema, current, state.ema_decay, new_state.step))
  metrics = {
    "loss": sum(per_head.values()),
    "grad_norm": optax.global_norm(grads),
    "learning_rate": learning_rate_fn(state.step),
  }
  for head, logits in outputs.items():
    metrics[f"{head}_loss"] = per_head[head]
    metrics[f"{head}_top1"] = jnp.mean(jnp.argmax(logits, -1) == batch["label"])
  return new_state, metrics


def scored_heads(eval_heads: str) -> tuple[str, ...]:
  """The heads whose probabilities are averaged into the model's prediction (config.dataset.eval_heads)."""
  return models.HEADS if eval_heads == "all" else (models.PREDICTION_HEAD,)


def scored_probabilities(outputs: Mapping[str, jax.Array], eval_heads: str) -> jax.Array:
  """The model's (..., K) float32 class probabilities from its {head: logits}: the mean of the softmax of the
  `scored_heads(eval_heads)`."""
  heads = scored_heads(eval_heads)
  return jnp.mean(jnp.stack([jax.nn.softmax(outputs[head].astype(jnp.float32), axis=-1) for head in heads]), axis=0)


def eval_step(
  state: TrainState, batch: Batch, *, loss_fn: losses.LossFn, num_classes: int, eval_heads: str = "concat"
) -> Metrics:
  """Sums over the real (mask True) examples of a padded batch, to be added up over the eval split, with the
  state's `model_variables()` (the moving averages when the run keeps them).

  Each example's S evaluation views (crops and turns; skeleton (B, S, M, T, V, C)) go through the model together;
  a head's prediction is the mean of its S softmax probabilities, scored as the log of that mean (for S = 1 the
  log-softmax of the logits: the same top-k and, since every loss reads logits through a softmax, the same loss).
  The model's prediction (`eval_heads`, config.dataset.eval_heads): the concat head's, or ("all") the mean of
  every head's probabilities.

  Returns:
    {"count", "<head>_loss" (sum), "<head>_top1", "<head>_top5", "top1", "top5" (numbers correct; the last two
    of the prediction), "confusion" (K, K) counts of (true label, prediction)}.
  """
  skeleton = batch["skeleton"]
  batch_size, clips = skeleton.shape[:2]
  outputs = state.apply_fn(
    state.model_variables(), skeleton.reshape(batch_size * clips, *skeleton.shape[2:]), train=False
  )
  labels, mask = batch["label"], batch["mask"]
  sums = {"count": jnp.sum(mask, dtype=jnp.int32)}
  scores = {}
  for head, clip_logits in outputs.items():
    log_probs = jax.nn.log_softmax(clip_logits.astype(jnp.float32), axis=-1).reshape(batch_size, clips, -1)
    scores[head] = jax.nn.logsumexp(log_probs, axis=1) - jnp.log(clips)
  heads = scored_heads(eval_heads)
  prediction = jax.nn.logsumexp(jnp.stack([scores[h] for h in heads]), axis=0) - jnp.log(len(heads))

  def correct(logits: jax.Array) -> tuple[jax.Array, jax.Array]:
    _, top_k = jax.lax.top_k(logits, min(5, num_classes))
    top1 = jnp.argmax(logits, -1) == labels
    top5 = jnp.any(top_k == labels[:, None], axis=-1)
    return jnp.sum(top1 & mask, dtype=jnp.int32), jnp.sum(top5 & mask, dtype=jnp.int32)

  for head, logits in scores.items():
    sums[f"{head}_loss"] = jnp.sum(jnp.where(mask, loss_fn(logits, labels), 0.0))
    sums[f"{head}_top1"], sums[f"{head}_top5"] = correct(logits)
  sums["top1"], sums["top5"] = correct(prediction)
  predictions = jnp.argmax(prediction, -1)
  sums["confusion"] = (
    jnp.zeros((num_classes, num_classes), jnp.int32).at[labels, predictions].add(mask.astype(jnp.int32))
  )
  return sums


def _under_mesh(fn: Callable[..., Any], mesh: jax.sharding.Mesh) -> Callable[..., Any]:
  """`fn` traced under `mesh`, so that the model's Pallas kernels run on each device's share of the batch
  (nonlocal_attention.per_shard; XLA cannot partition them itself)."""

  @functools.wraps(fn)
  def traced(*args: Any, **kwargs: Any) -> Any:
    with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
      return fn(*args, **kwargs)

  return traced


def jit_train_step(
  mesh: jax.sharding.Mesh, loss_fn: losses.LossFn, learning_rate_fn: optax.Schedule, mixup_alpha: float = 0.0
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
  """`train_step` compiled for a batch split over the data axis and a replicated, donated state."""
  step = functools.partial(train_step, loss_fn=loss_fn, learning_rate_fn=learning_rate_fn, mixup_alpha=mixup_alpha)
  return jax.jit(
    _under_mesh(step, mesh),
    in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
    out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
    donate_argnums=(0,),
  )


def jit_eval_step(
  mesh: jax.sharding.Mesh, loss_fn: losses.LossFn, num_classes: int, eval_heads: str = "concat"
) -> Callable[[TrainState, Batch], Metrics]:
  """`eval_step` compiled for a batch split over the data axis; the sums come back replicated."""
  step = functools.partial(eval_step, loss_fn=loss_fn, num_classes=num_classes, eval_heads=eval_heads)
  return jax.jit(
    _under_mesh(step, mesh),
    in_shardings=(sharding.replicated(mesh), sharding.batch_sharding(mesh)),
    out_shardings=sharding.replicated(mesh),
  )


def compile_eval_step(
  config: ml_collections.ConfigDict, state: TrainState, mesh: jax.sharding.Mesh
) -> Callable[[TrainState, Batch], Metrics]:
  """`jit_eval_step` for `config`'s loss, classes, scoring heads and eval batch, compiled on every process."""
  jitted = jit_eval_step(mesh, losses.get_loss_fn(config.loss), config.dataset.num_classes, config.dataset.eval_heads)
  batch = abstract_batch(config, config.train.eval_batch_size, mesh, evaluation=True)
  return sharding.compile_everywhere(jitted, state, batch)
