"""Classification losses of the paper (Sec. 3.4, Eq. 12-18), as plain functions of logits.

Every loss takes `logits` (..., K) and `labels`, either integer class ids (...) or one-hot/soft targets (..., K),
and returns per-example losses (`reduction="none"`), their mean or their sum. All of them are computed from
`log p_t = log_softmax(logits)[label]` so that they stay finite, with finite gradients, for p_t -> 0 and p_t -> 1
(logits of +-1e4 included), in float32 and bfloat16 (computation is promoted to float32).

With p_t the probability of the true class, m the margin and gamma the focusing parameter:

  cross_entropy  CE(p_t)   = -log p_t                                             (the standard loss)
  smce           SMCE(p_t) = log(e^m + (1 - e^m) p_t) - log p_t                    (Eq. 13)
  focal_loss     FL(p_t)   = -(1 - p_t)^gamma log p_t                             (Eq. 15)
  smfl           SMFL(p_t) = log(e^m + (1 - e^m) p_t) - (1 - p_t)^gamma log p_t    (Eq. 16)

The soft-margin term log(e^m + (1 - e^m) p_t) (Eq. 12) is what SMCE and SMFL add to CE and FL.
SMCE equals the cross-entropy of a softmax whose true logit is reduced by m (Eq. 14). The model's three heads
are trained jointly with the sum of their losses (the pseudo multi-task loss, Eq. 17-18): `multitask_loss`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

import jax
import jax.numpy as jnp
import ml_collections

from slnl_jax import config_checks

Array = jax.Array
LossFn = Callable[[Array, Array], Array]

_REDUCTIONS = ("none", "mean", "sum")


def _log_pt(logits: Array, labels: Array) -> Array:
  """log p_t, the log-probability of the target class, in float32."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  if labels.ndim == logits.ndim:  # one-hot or soft targets
    return jnp.sum(labels.astype(jnp.float32) * log_probs, axis=-1)
  return jnp.take_along_axis(log_probs, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]


def _margin_term(log_pt: Array, margin: float) -> Array:
  """log(e^m + (1 - e^m) p_t), written as m + log1p(-(1 - e^-m) p_t) to stay finite at p_t -> 1."""
  shrink = -jnp.expm1(-margin)  # 1 - e^-m
  return margin + jnp.log1p(-shrink * jnp.exp(log_pt))


def _focal_weight(log_pt: Array, gamma: float) -> Array:
  """(1 - p_t)^gamma with 1 - p_t = -expm1(log p_t), exact for p_t near 1."""
  one_minus_pt = -jnp.expm1(log_pt)
  if gamma == 0:
    return jnp.ones_like(one_minus_pt)
  # Clamp so that d/dx x^gamma is finite for 0 < gamma < 1 at p_t = 1.
  return jnp.power(jnp.maximum(one_minus_pt, jnp.finfo(jnp.float32).tiny), gamma)


def _reduce(losses: Array, reduction: str) -> Array:
  if reduction == "none":
    return losses
  if reduction == "mean":
    return jnp.mean(losses)
  if reduction == "sum":
    return jnp.sum(losses)
  raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits: Array, labels: Array, *, reduction: str = "none") -> Array:
  """CE = -log p_t, the standard cross-entropy (Sec. 3.4 builds SMCE on it)."""
  return _reduce(-_log_pt(logits, labels), reduction)


def focal_loss(logits: Array, labels: Array, *, gamma: float = 2.0, reduction: str = "none") -> Array:
  """FL = -(1 - p_t)^gamma log p_t (Eq. 15, Lin et al. 2017)."""
  log_pt = _log_pt(logits, labels)
  return _reduce(-_focal_weight(log_pt, gamma) * log_pt, reduction)


def smce(logits: Array, labels: Array, *, margin: float = 0.4, reduction: str = "none") -> Array:
  """Soft-margin cross-entropy SMCE = log(e^m + (1 - e^m) p_t) - log p_t (Eq. 13-14)."""
  log_pt = _log_pt(logits, labels)
  return _reduce(_margin_term(log_pt, margin) - log_pt, reduction)


def smfl(
  logits: Array,
  labels: Array,
  *,
  gamma: float = 2.0,
  margin: float = 0.4,
  reduction: str = "none",
) -> Array:
  """Soft-margin focal loss SMFL = log(e^m + (1 - e^m) p_t) - (1 - p_t)^gamma log p_t (Eq. 16)."""
  log_pt = _log_pt(logits, labels)
  return _reduce(_margin_term(log_pt, margin) - _focal_weight(log_pt, gamma) * log_pt, reduction)


def label_smoothed(loss_fn: LossFn, eps: float) -> LossFn:
  """(1 - eps) loss_fn + eps * mean_k(-log p_k): for CE, the cross-entropy against the labels smoothed towards the
  uniform distribution, (1 - eps) one_hot + eps / K (Szegedy et al. 2016); for the paper's losses, the same uniform
  term added to the loss of the true class. Not in the paper."""

  def smoothed(logits: Array, labels: Array) -> Array:
    uniform = -jnp.mean(jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1), axis=-1)
    return (1.0 - eps) * loss_fn(logits, labels) + eps * uniform

  return smoothed


def get_loss_fn(loss_config: ml_collections.ConfigDict) -> LossFn:
  """The per-example loss named by `config.loss` (name, gamma, margin), label-smoothed by `label_smoothing`."""
  name = loss_config.name
  if name == "cross_entropy":
    loss_fn = cross_entropy
  elif name == "focal_loss":
    loss_fn = functools.partial(focal_loss, gamma=loss_config.gamma)
  elif name == "smce":
    loss_fn = functools.partial(smce, margin=loss_config.margin)
  elif name == "smfl":
    loss_fn = functools.partial(smfl, gamma=loss_config.gamma, margin=loss_config.margin)
  else:
    raise ValueError(f"config.loss.name: unknown loss {name!r}; expected cross_entropy, focal_loss, smce or smfl")
  eps = config_checks.saved_setting(loss_config, "loss.label_smoothing")
  return label_smoothed(loss_fn, eps) if eps else loss_fn


def multitask_loss(
  logits: Mapping[str, Array],
  labels: Array,
  loss_fn: LossFn,
  *,
  reduction: str = "mean",
) -> tuple[Array, dict[str, Array]]:
  """Pseudo multi-task loss (Eq. 17-18): the sum over heads of each head's loss.

  Args:
    logits: head name -> logits (B, K), e.g. {"position", "velocity", "concat"}.
    labels: integer (B,) or one-hot (B, K) targets shared by every head.
    loss_fn: per-example loss, e.g. from `get_loss_fn`.
    reduction: applied to each head's per-example losses.

  Returns:
    (total, per_head): the summed loss and each head's reduced loss.
  """
  per_head = {name: _reduce(loss_fn(head, labels), reduction) for name, head in logits.items()}
  return sum(per_head.values()), per_head
