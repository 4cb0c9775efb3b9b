"""Pictures of what SLnL-rFA learned and how it did.

Five pictures: the rFA masks, the spatio-temporal non-local affinity, the skeleton animated with joints coloured
by attention, the confusion matrix with per-class accuracy, and the learning curves. Each plotting function takes
plain arrays (or a file) and an output path, draws on matplotlib's Agg canvas (no pyplot, so importing this
module never changes a notebook's backend), and returns a `Plot`: the written path and the arrays exactly as
drawn, so that callers and tests can check contents rather than pixels. `sown` and `input_saliency` get those
arrays out of a model; tools/visualize.py puts it all together for a trained workdir.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util
from matplotlib import animation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from slnl_jax.data import layouts

Bones = layouts.Bones
NTU25_BONES, MSR20_BONES = layouts.NTU25.bones, layouts.MSR20.bones
OPENPOSE18_BONES, COCO17_BONES = layouts.OPENPOSE18.bones, layouts.COCO17.bones

# Every named layout (slnl_jax/data/layouts.py), by joint count (the counts are distinct).
BONES: dict[int, Bones] = {layout.num_joints: layout.bones for layout in layouts.LAYOUTS.values()}


class Plot(NamedTuple):
  """A written picture and the arrays it shows."""

  path: pathlib.Path
  data: dict[str, np.ndarray]


def sown(intermediates: Mapping[str, Any], name: str) -> dict[str, np.ndarray]:
  """Every value sown under `name` in a model's `intermediates` collection, keyed by its module path.

  E.g. `sown(state["intermediates"], "fa_mask_cos")` gives {"position_stream/frequency_attention": (B', T, N'),
  "velocity_stream/frequency_attention": ...}. Flax's `sow` stores a tuple of the values sown in one call of
  `apply`; the model sows each once, so the first is taken.
  """
  found = {}
  for path, values in traverse_util.flatten_dict(intermediates).items():
    if path[-1] == name:
      found["/".join(path[:-1])] = np.asarray(values[0])
  return found


def input_saliency(
  logits_fn: Callable[[jax.Array], jax.Array], x: jax.Array, target: jax.Array | None = None
) -> tuple[np.ndarray, np.ndarray]:
  """Gradient saliency of each input joint: |d logit_target / d x| summed over the coordinate channels.

  The attention maps live on the N' joints of the skeleton transformer, each a mix of all N input joints
  (Sec. 3.1); the saliency is defined on the input joints themselves.

  Args:
    logits_fn: x -> (B, K) logits, each example's logits depending on that example only (e.g. the model in
      evaluation mode, `train=False`).
    x: (B, ..., C) input, e.g. (B, M, T, V, C) clips.
    target: (B,) class per example; None for each example's predicted class.

  Returns:
    (saliency (B, ...) = x.shape[:-1], target (B,)).
  """
  x = jnp.asarray(x, jnp.float32)
  if target is None:
    target = jnp.argmax(logits_fn(x), axis=-1)
  target = jnp.asarray(target)

  def target_logits(x: jax.Array) -> jax.Array:
    # Examples are independent, so the gradient of the sum is each example's own gradient.
    return jnp.take_along_axis(logits_fn(x), target[:, None], axis=-1).sum()

  grad = jax.grad(target_logits)(x)
  return np.asarray(jnp.abs(grad).sum(axis=-1)), np.asarray(target)


def _figure(width: float, height: float) -> Figure:
  fig = Figure(figsize=(width, height), layout="constrained")
  FigureCanvasAgg(fig)
  return fig


def _save(fig: Figure, path: str | os.PathLike) -> pathlib.Path:
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=100)
  return path


def _check_rank(name: str, array: np.ndarray, rank: int, shape: str) -> None:
  if array.ndim != rank:
    raise ValueError(f"{name} must be {shape}; got shape {array.shape}")


def plot_frequency_masks(mask_cos: np.ndarray, mask_sin: np.ndarray, path: str | os.PathLike) -> Plot:
  """Heat maps of the rFA masks M_cos and M_sin (Sec. 3.2, Eq. 1-4) over (temporal, joint) frequency.

  The masks are indexed like `jnp.fft.fft2` output (zero frequency at [0, 0]); both axes are fftshifted so that
  zero frequency sits at the centre `[T' // 2, N' // 2]` and the axes read in cycles per frame / per joint.

  Args:
    mask_cos: (T', N') mask applied to the real (cosine) part of the spectrum.
    mask_sin: (T', N') mask applied to the imaginary (sine) part.
    path: output image file (format from the suffix, e.g. .png).

  Returns:
    `Plot` with data `cos`, `sin` (the shifted masks) and `temporal_frequency` (T',), `joint_frequency` (N').
  """
  mask_cos, mask_sin = np.asarray(mask_cos, np.float32), np.asarray(mask_sin, np.float32)
  _check_rank("mask_cos", mask_cos, 2, "(T', N')")
  if mask_sin.shape != mask_cos.shape:
    raise ValueError(f"mask_sin shape {mask_sin.shape} differs from mask_cos shape {mask_cos.shape}")
  num_t, num_n = mask_cos.shape
  data = {
    "cos": np.fft.fftshift(mask_cos),
    "sin": np.fft.fftshift(mask_sin),
    "temporal_frequency": np.fft.fftshift(np.fft.fftfreq(num_t)),
    "joint_frequency": np.fft.fftshift(np.fft.fftfreq(num_n)),
  }
  # Cell edges half a bin either side of the first and last frequency; the bin width is 1/n cycles.
  extent = (
    data["joint_frequency"][0] - 0.5 / num_n,
    data["joint_frequency"][-1] + 0.5 / num_n,
    data["temporal_frequency"][-1] + 0.5 / num_t,
    data["temporal_frequency"][0] - 0.5 / num_t,
  )
  # One colour scale for both masks, spanning their values: learned sigmoid masks often sit in a narrow band.
  low, high = min(mask_cos.min(), mask_sin.min()), max(mask_cos.max(), mask_sin.max())
  fig = _figure(10, 4.5)
  axes = fig.subplots(1, 2)
  for ax, key, title in zip(axes, ("cos", "sin"), ("$M_{cos}$ (real part)", "$M_{sin}$ (imaginary part)"), strict=True):
    image = ax.imshow(data[key], vmin=low, vmax=high, cmap="viridis", aspect="auto", extent=extent)
    ax.set_title(title)
    ax.set_xlabel("joint frequency (cycles / joint)")
    ax.set_ylabel("temporal frequency (cycles / frame)")
  fig.colorbar(image, ax=axes, label="mask value")
  fig.suptitle("Frequency attention masks (zero frequency at the centre)")
  return Plot(_save(fig, path), data)


def plot_nonlocal_affinity(
  affinity: np.ndarray, query: int | tuple[int, int], grid_shape: tuple[int, int], path: str | os.PathLike
) -> Plot:
  """The spatio-temporal non-local affinity of one query position (Sec. 3.3, Eq. 5-8) over frames x joints.

  Positions are the block's (T, N) feature-map cells flattened row-major, p = t * N + n, as in the model's
  `(T * N, C)` reshape, so row p of the softmax-normalised affinity reshapes to a (T, N) map that sums to 1.

  Args:
    affinity: (P, P) affinity of one clip, P = T * N; row i is query i's distribution over positions j.
    query: the query position, flat index p or (t, n).
    grid_shape: (T, N) of the block's feature map.
    path: output image file.

  Returns:
    `Plot` with data `affinity` (T, N) and `query` (t, n).
  """
  affinity = np.asarray(affinity, np.float32)
  num_t, num_n = grid_shape
  _check_rank("affinity", affinity, 2, "(P, P)")
  if affinity.shape != (num_t * num_n,) * 2:
    raise ValueError(f"affinity shape {affinity.shape} does not match grid_shape {grid_shape}: expected P = T * N")
  t, n = divmod(query, num_n) if isinstance(query, int | np.integer) else query
  if not (0 <= t < num_t and 0 <= n < num_n):
    raise ValueError(f"query {query} lies outside the (T, N) = {grid_shape} grid")
  data = {"affinity": affinity[t * num_n + n].reshape(num_t, num_n), "query": np.array([t, n])}
  fig = _figure(6, 5)
  ax = fig.subplots()
  image = ax.imshow(data["affinity"], cmap="magma", aspect="auto", interpolation="nearest")
  ax.scatter([n], [t], marker="x", s=80, color="cyan", label="query")
  ax.legend(loc="upper right")
  ax.set_xlabel("joint of the transformed skeleton (n)")
  ax.set_ylabel("frame of the feature map (t)")
  ax.set_title(f"Spatio-temporal non-local affinity of query (t={t}, n={n})")
  fig.colorbar(image, ax=ax, label="attention weight")
  return Plot(_save(fig, path), data)


def animate_skeleton(
  skeleton: np.ndarray,
  bones: Sequence[tuple[int, int]],
  joint_weights: np.ndarray,
  path: str | os.PathLike,
  *,
  fps: int = 10,
  image_coordinates: bool = False,
  title: str = "",
) -> Plot:
  """A GIF of the skeleton (x, y of each joint) with joints coloured by attention, one GIF frame per clip frame.

  Weights are scaled by their maximum over the whole clip, so colours compare across frames. Joints at exactly
  (0, 0) are treated as missing (the readers' zero padding and undetected OpenPose joints) and not drawn.

  Args:
    skeleton: (T, V, C) or (T, M, V, C) clip, C >= 2; channels 0 and 1 are drawn as x and y.
    bones: (joint, joint) pairs to connect, e.g. `BONES[V]`.
    joint_weights: non-negative attention broadcastable to (T, V) or (T, M, V): (V,), (T, V) or (T, M, V).
    path: output .gif file.
    fps: frames per second of the GIF.
    image_coordinates: y grows downwards (OpenPose pixels) rather than upwards (Kinect metres).
    title: shown above the frame counter.

  Returns:
    `Plot` with data `weights` (T, M, V) in [0, 1] as coloured.
  """
  skeleton = np.asarray(skeleton, np.float32)
  if skeleton.ndim == 3:
    skeleton = skeleton[:, None]
  if skeleton.ndim != 4 or skeleton.shape[-1] < 2:
    raise ValueError(f"skeleton must be (T, V, C) or (T, M, V, C) with C >= 2; got shape {skeleton.shape}")
  num_frames, num_persons, num_joints, _ = skeleton.shape
  weights = np.asarray(joint_weights, np.float32)
  if weights.ndim == 2:  # (T, V): the same weights for every person.
    weights = weights[:, None]
  try:
    weights = np.broadcast_to(weights, (num_frames, num_persons, num_joints))
  except ValueError:
    raise ValueError(
      f"joint_weights shape {np.shape(joint_weights)} does not broadcast to the skeleton's "
      f"(T, M, V) = {(num_frames, num_persons, num_joints)}"
    ) from None
  if np.any(weights < 0) or not np.all(np.isfinite(weights)):
    raise ValueError("joint_weights must be finite and non-negative")
  if bones and max(max(bone) for bone in bones) >= num_joints:
    raise ValueError(f"bones reference joints beyond the skeleton's {num_joints}")
  peak = weights.max()
  weights = weights / peak if peak > 0 else np.zeros_like(weights)

  xy = skeleton[..., :2]
  present = np.any(xy != 0, axis=-1)  # (T, M, V)
  if not present.any():
    raise ValueError("the skeleton has no joint away from (0, 0): nothing to draw")
  low, high = xy[present].min(0), xy[present].max(0)
  margin = 0.05 * max(float((high - low).max()), 1e-6)

  fig = _figure(5, 5)
  ax = fig.subplots()
  ax.set_xlim(low[0] - margin, high[0] + margin)
  ax.set_ylim((high[1] + margin, low[1] - margin) if image_coordinates else (low[1] - margin, high[1] + margin))
  ax.set_aspect("equal")
  ax.set_xlabel("x")
  ax.set_ylabel("y")
  bone_lines = [ax.plot([], [], color="0.6", linewidth=2)[0] for _ in range(num_persons * len(bones))]
  joints = ax.scatter(np.zeros(0), np.zeros(0), c=np.zeros(0), cmap="inferno", vmin=0.0, vmax=1.0, s=40, zorder=3)
  fig.colorbar(joints, ax=ax, label="attention (relative)")
  path = pathlib.Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  writer = animation.PillowWriter(fps=fps)
  with writer.saving(fig, os.fspath(path), dpi=80):
    for t in range(num_frames):
      lines = iter(bone_lines)
      for m in range(num_persons):
        for a, b in bones:
          line = next(lines)
          shown = present[t, m, a] and present[t, m, b]
          line.set_data(xy[t, m, [a, b], 0] if shown else [], xy[t, m, [a, b], 1] if shown else [])
      joints.set_offsets(xy[t][present[t]])
      joints.set_array(weights[t][present[t]])
      # The changing title also keeps every GIF frame distinct: Pillow merges identical consecutive frames.
      ax.set_title(f"{title}\nframe {t + 1} / {num_frames}" if title else f"frame {t + 1} / {num_frames}")
      writer.grab_frame()
  return Plot(path, {"weights": weights})


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
  """Recall of each class from a (K, K) count matrix with rows = true class: diag / row sum (NaN for no examples)."""
  cm = np.asarray(cm, np.float64)
  if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
    raise ValueError(f"confusion matrix must be square (K, K); got shape {cm.shape}")
  totals = cm.sum(axis=1)
  with np.errstate(invalid="ignore", divide="ignore"):
    return np.where(totals > 0, np.diag(cm) / totals, np.nan)


def plot_confusion_matrix(cm: np.ndarray, class_names: Sequence[str] | None, path: str | os.PathLike) -> Plot:
  """The row-normalised confusion matrix (rows = true class) beside a bar chart of per-class accuracy.

  Args:
    cm: (K, K) counts, rows = true class, columns = predicted class.
    class_names: K names, or None for class indices.
    path: output image file.

  Returns:
    `Plot` with data `normalized` (K, K) (rows of classes without examples are zero) and `accuracy` (K,).
  """
  cm = np.asarray(cm, np.float64)
  accuracy = per_class_accuracy(cm)
  num_classes = cm.shape[0]
  names = [str(k) for k in range(num_classes)] if class_names is None else [str(name) for name in class_names]
  if len(names) != num_classes:
    raise ValueError(f"{len(names)} class names for a {num_classes}-class confusion matrix")
  totals = cm.sum(axis=1, keepdims=True)
  normalized = np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)
  data = {"normalized": normalized, "accuracy": accuracy}

  # Names stay readable up to a few dozen classes; beyond that (Kinetics-400) the axes show indices only.
  labelled = num_classes <= 60
  size = min(4 + 0.25 * num_classes, 30)
  fig = _figure(size * 1.5, size)
  ax_cm, ax_acc = fig.subplots(1, 2, width_ratios=(1, 0.4))
  image = ax_cm.imshow(normalized, vmin=0.0, vmax=1.0, cmap="Blues", interpolation="nearest")
  ax_cm.set_xlabel("predicted class")
  ax_cm.set_ylabel("true class")
  ax_cm.set_title("Confusion matrix (row-normalised)")
  fig.colorbar(image, ax=ax_cm, shrink=0.8)
  rows = np.arange(num_classes)
  ax_acc.barh(rows, np.nan_to_num(accuracy), color="tab:blue")
  ax_acc.set_ylim(num_classes - 0.5, -0.5)  # the same top-to-bottom class order as the matrix
  ax_acc.set_xlim(0.0, 1.0)
  ax_acc.set_xlabel("accuracy")
  mean = np.nanmean(accuracy) if np.isfinite(accuracy).any() else float("nan")
  ax_acc.set_title(f"Per-class accuracy\n(mean {mean:.3f})")  # one line ran past the figure
  if labelled:
    for ax in (ax_cm, ax_acc):
      ax.set_yticks(rows, names, fontsize=7)
    ax_cm.set_xticks(rows, names, rotation=90, fontsize=7)
  return Plot(_save(fig, path), data)


def read_metrics(path: str | os.PathLike) -> list[dict]:
  """The records of a trainer's `metrics.jsonl`, one JSON object per line (blank lines ignored).

  Each record is flat, as slnl_jax/evaluation.py `MetricsLog` writes it: `{"step", "epoch", "split", "loss",
  "concat_top1", ...}`.
  """
  records = []
  with open(path) as f:
    for line_number, line in enumerate(f, start=1):
      if not line.strip():
        continue
      try:
        record = json.loads(line)
      except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{line_number}: not a JSON object ({e.msg})") from None
      if not isinstance(record, dict):
        raise ValueError(f"{path}:{line_number}: expected a JSON object, got {line.strip()}")
      records.append(record)
  return records


def _series(records: list[dict], split: str, key: str, path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
  """(epochs, mean of `key` over the split's records of each epoch), epochs ascending."""
  by_epoch: dict[float, list[float]] = {}
  for record in records:
    if record.get("split") != split or key not in record:
      continue
    if "epoch" not in record:
      raise ValueError(f"{path}: a '{split}' record with '{key}' has no 'epoch': {record}")
    by_epoch.setdefault(record["epoch"], []).append(float(record[key]))
  if not by_epoch:
    raise ValueError(f"{path}: no '{split}' record carries '{key}'")
  epochs = sorted(by_epoch)
  return np.array(epochs, np.float64), np.array([np.mean(by_epoch[e]) for e in epochs])


def plot_learning_curves(
  metrics_path: str | os.PathLike, path: str | os.PathLike, *, eval_metric: str = "top1"
) -> Plot:
  """Training loss and evaluation top-1 per epoch (0-based, as logged) from a trainer's `metrics.jsonl`.

  Training records logged several times within an epoch are averaged into that epoch's point.

  Args:
    metrics_path: the trainer's metrics.jsonl (see `read_metrics`); train records carry `loss` (the sum of the
      three heads' losses, Eq. 17-18), eval records `eval_metric`.
    path: output image file.
    eval_metric: the eval accuracy to draw; `top1` is the model's prediction (`config.dataset.eval_heads`), and
      `concat_top1`, `position_top1`, `velocity_top1` are the heads'.

  Returns:
    `Plot` with data `train_epoch`, `train_loss`, `eval_epoch`, `eval_top1`.
  """
  records = read_metrics(metrics_path)
  train_epoch, train_loss = _series(records, "train", "loss", metrics_path)
  eval_epoch, eval_top1 = _series(records, "eval", eval_metric, metrics_path)
  data = {"train_epoch": train_epoch, "train_loss": train_loss, "eval_epoch": eval_epoch, "eval_top1": eval_top1}
  fig = _figure(10, 4)
  ax_loss, ax_top1 = fig.subplots(1, 2)
  ax_loss.plot(train_epoch, train_loss, marker="o", markersize=3)
  ax_loss.set_xlabel("epoch")
  ax_loss.set_ylabel("training loss (sum of the three heads)")
  ax_loss.set_title("Training loss")
  ax_top1.plot(eval_epoch, eval_top1, marker="o", markersize=3, color="tab:green")
  ax_top1.set_xlabel("epoch")
  ax_top1.set_ylabel(eval_metric)
  ax_top1.set_title("Evaluation top-1")
  for ax in (ax_loss, ax_top1):
    ax.grid(alpha=0.3)
  return Plot(_save(fig, path), data)
