"""The SLnL-rFA network (Fig. 1): two streams, person max-merge and three classifier heads.

Input: a batch of clips, channels-last (B, M, T, V, C) = (batch, persons, frames, joints, coordinates); a person
absent from a clip is zero-padded (all zeros). Each stream sees every person as its own example (persons share
the weights), and computes

  data BN over the V*C channels -> transform network (Sec. 3.1; `transform_network=False` skips it, an
  ablation) -> frequency attention (Sec. 3.2)
  -> M1 SLnL blocks + M2 local blocks (Fig. 3), a 2x2 max-pool after every `pool_every` blocks
  -> global average pooling over frames x joints.

The position stream reads the coordinates; the velocity stream their frame differences v_t = x_{t+1} - x_t, with
the last frame's velocity set to zero so both streams see T frames. The persons' features are merged by an
element-wise max over the persons present in the clip: an all-zero (absent) person is left out, so a clip
zero-padded to M persons gives the same evaluation-mode output as the clip with its real persons only (a clip
with no person at all falls back to the max over all its slots). In training the zero slots still enter the
BatchNorm statistics. Three Dense heads classify the position features, the velocity features and their
concatenation; inference uses `concat`.

The frequency-attention FC layers act on the flattened T x N' spectrum, so a model's parameters fix the clip
length T (`config.dataset.num_frames`).

Intermediates (returned with `mutable=["intermediates"]`, each a 1-tuple; B' = B*M, stream in
{position_stream, velocity_stream}):
  intermediates/<stream>/frequency_attention/fa_mask_cos, .../fa_mask_sin   (B', T, N') masks of rFA
    (fa_mask_amplitude for the `amplitude` variant, none for `none`),
  intermediates/<stream>/block_<i>/nonlocal_spatio_temporal/st_affinity      (B', P, P), P = T_i * N'_i
    positions of block i (frame-major), the softmax rows of the spatio-temporal non-local module.
"""

import dataclasses
import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from slnl_jax.models.blocks import CONV_KERNEL_GRADS, LocalBlock, SLnLBlock, batch_norm
from slnl_jax.models.frequency_attention import FrequencyAttention
from slnl_jax.models.nonlocal_attention import KINDS
from slnl_jax.models.transform import TransformNetwork

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
# The keys of SLnLrFA's output, one classifier head each; "concat" is the model's prediction.
HEADS = ("position", "velocity", "concat")
PREDICTION_HEAD = "concat"


class Architecture(nn.Module):
  """The settings of a stream (`config.model` in configs/default.py), shared by `Stream` and `SLnLrFA`."""

  num_joints_out: int = 64
  num_systems: int = 10
  transform_network: bool = True
  frequency_attention: str = "residual"
  fa_reduction: int = 16
  channels: tuple[int, ...] = (64, 64, 128, 128, 256, 256)
  kernel_sizes: tuple[int, ...] = (3, 3, 3, 3, 3, 3)
  num_slnl_blocks: int = 5
  pool_every: int = 2
  nonlocal_kinds: tuple[str, ...] = KINDS
  nonlocal_impl: str = "auto"
  embed_ratio: float = 0.5
  dropout_rate: float = 0.2
  remat: bool = False
  dtype: Any = jnp.float32
  conv_kernel_grad: str = "auto"

  @nn.nowrap
  def architecture(self) -> dict[str, Any]:
    """These settings as keyword arguments (without the module's own parent and name)."""
    return {f.name: getattr(self, f.name) for f in dataclasses.fields(Architecture) if f.name not in ("parent", "name")}


class Stream(Architecture):
  """One stream (Fig. 1): (B', T, V, C) clips of single persons -> (B', channels[-1]) float32 features."""

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    b, t, v, c = x.shape
    # "Data BN": normalise each (joint, coordinate) channel over examples and frames; in float32 whatever the
    # compute dtype, since raw coordinates and small velocities lose digits in bfloat16 before normalisation.
    x = batch_norm(train, jnp.float32, "data_bn")(x.reshape(b, t, v * c)).reshape(b, t, v, c).astype(self.dtype)
    if self.transform_network:
      x = TransformNetwork(self.num_joints_out, self.num_systems, self.dtype, name="transform")(x)
    x = FrequencyAttention(self.frequency_attention, self.fa_reduction, self.dtype, name="frequency_attention")(x)
    slnl_block, local_block = SLnLBlock, LocalBlock
    if self.remat:
      # Argument 2 (after self and x) is `train`, a Python bool.
      slnl_block = nn.remat(SLnLBlock, static_argnums=(2,))
      local_block = nn.remat(LocalBlock, static_argnums=(2,))
    num_blocks = len(self.channels)
    for i, (features, kernel_size) in enumerate(zip(self.channels, self.kernel_sizes, strict=True)):
      if i < self.num_slnl_blocks:
        block = slnl_block(
          features,
          kernel_size,
          self.dropout_rate,
          self.dtype,
          nonlocal_kinds=self.nonlocal_kinds,
          embed_ratio=self.embed_ratio,
          nonlocal_impl=self.nonlocal_impl,
          conv_kernel_grad=self.conv_kernel_grad,
          name=f"block_{i}",
        )
      else:
        block = local_block(
          features,
          kernel_size,
          self.dropout_rate,
          self.dtype,
          conv_kernel_grad=self.conv_kernel_grad,
          name=f"block_{i}",
        )
      x = block(x, train)
      if (i + 1) % self.pool_every == 0 and i + 1 < num_blocks:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    return x.astype(jnp.float32).mean(axis=(1, 2))


def merge_persons(features: jax.Array, present: jax.Array) -> jax.Array:
  """Element-wise max over the persons present: (B, M, F), (B, M) bool -> (B, F).

  A clip with no person present takes the max over all its slots, so the output stays finite.
  """
  present = present | ~present.any(axis=1, keepdims=True)
  return jnp.where(present[..., None], features, -jnp.inf).max(axis=1)


class SLnLrFA(Architecture):
  """SLnL-rFA (Fig. 1): (B, M, T, V, C) clips -> {"position", "velocity", "concat"} float32 (B, classes) logits.

  See the module docstring for the data flow and the sown intermediates. The attributes are those of
  `Architecture` (mirroring `config.model`, see configs/default.py) plus the keyword-only `num_classes`.

  `dtype` is the computation dtype of the convolutions and dense layers. With bfloat16 (mixed precision),
  params, BatchNorm statistics and normalisation of the input, the FFTs of frequency attention, every softmax
  and log-sum-exp (non-local affinities, losses) and the logits stay float32.
  """

  num_classes: int = dataclasses.field(kw_only=True)

  @nn.compact
  def __call__(self, x: jax.Array, *, train: bool) -> dict[str, jax.Array]:
    if x.ndim != 5:
      raise ValueError(f"SLnLrFA expects (batch, persons, frames, joints, channels) input, got {x.shape}")
    b, m, t, v, c = x.shape
    x = x.astype(jnp.float32)
    present = jnp.any(x != 0, axis=(2, 3, 4))
    velocity = jnp.concatenate([jnp.diff(x, axis=2), jnp.zeros_like(x[:, :, :1])], axis=2)
    features = {}
    for name, inputs in (("position", x), ("velocity", velocity)):
      per_person = Stream(**self.architecture(), name=f"{name}_stream")(inputs.reshape(b * m, t, v, c), train)
      features[name] = merge_persons(per_person.reshape(b, m, -1), present)
    features["concat"] = jnp.concatenate([features["position"], features["velocity"]], axis=-1)
    return {name: nn.Dense(self.num_classes, name=f"head_{name}")(f) for name, f in features.items()}


def create_model(config: ml_collections.ConfigDict) -> SLnLrFA:
  """`SLnLrFA(**config.model)` with `config.dataset.num_classes` and `config.dtype`.

  `config.model` declares the settings once: its keys are `Architecture`'s fields (besides `dtype`) with the
  same defaults (configs/default.py), so a key the model does not know is an error, not ignored.
  """
  model = config.model
  fields = {f.name for f in dataclasses.fields(Architecture)} - {"parent", "name", "dtype"}
  if unknown := sorted(set(model) - fields):
    raise ValueError(
      f"config.model.{unknown[0]} is not a setting of SLnLrFA (its settings: {', '.join(sorted(fields))})"
    )
  if config.dtype not in DTYPES:
    raise ValueError(f"config.dtype must be one of {tuple(DTYPES)}, got {config.dtype!r}")
  if len(model.kernel_sizes) != len(model.channels):
    raise ValueError(
      f"config.model.kernel_sizes has {len(model.kernel_sizes)} entries but config.model.channels has "
      f"{len(model.channels)}: give one kernel size per block"
    )
  if not 0 <= model.num_slnl_blocks <= len(model.channels):
    raise ValueError(
      f"config.model.num_slnl_blocks must be in [0, {len(model.channels)}] (the number of blocks), "
      f"got {model.num_slnl_blocks}"
    )
  if model.conv_kernel_grad not in CONV_KERNEL_GRADS:
    raise ValueError(
      f"config.model.conv_kernel_grad must be one of {tuple(CONV_KERNEL_GRADS)}, got {model.conv_kernel_grad!r}"
    )
  if model.pool_every < 1:
    raise ValueError(f"config.model.pool_every must be >= 1, got {model.pool_every}")
  settings = {name: tuple(value) if isinstance(value, list | tuple) else value for name, value in model.items()}
  return SLnLrFA(**settings, num_classes=config.dataset.num_classes, dtype=DTYPES[config.dtype])


def count_params(tree: Any) -> int:
  """The number of scalars in a pytree of arrays (or of `jax.ShapeDtypeStruct`s)."""
  return sum(int(leaf.size) for leaf in jax.tree.leaves(tree))


def flop_reference(model: SLnLrFA) -> SLnLrFA:
  """The same function and parameters written without loops or recomputation, for XLA's FLOP count.

  XLA's cost analysis counts a loop body once, so the `chunked` non-local and the `matmul` convolution kernel
  gradient (`lax.map`s) would be under-counted, and remat's recomputation is not model work.
  """
  return model.clone(nonlocal_impl="einsum", conv_kernel_grad="xla", remat=False)


def model_summary(model: SLnLrFA, variables: Any, input_shape: tuple[int, ...]) -> str:
  """One line: parameter count and XLA's FLOP count of an evaluation forward pass on an `input_shape` batch.

  The FLOPs are those of `flop_reference(model)`.
  """
  apply = jax.jit(functools.partial(flop_reference(model).apply, train=False))
  cost = apply.lower(variables, jax.ShapeDtypeStruct(input_shape, jnp.float32)).compile().cost_analysis()
  # Older jax returns one dict per device program.
  if isinstance(cost, list | tuple):
    cost = cost[0]
  flops = cost.get("flops", float("nan"))
  return (
    f"{type(model).__name__}: {count_params(variables['params']):,} parameters, "
    f"{flops / 1e9:.4g} GFLOPs per forward pass of a {tuple(input_shape)} batch"
  )
