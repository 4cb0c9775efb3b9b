r"""Writes the five pictures of slnl_jax/visualize.py for a trained workdir and one raw skeleton file.

  python tools/visualize.py --workdir=workdirs/demo --input=S001C001P001R001A001.skeleton [--out=DIR]

Into --out (default <workdir>/pictures):
  frequency_masks.png     rFA masks M_cos, M_sin of the position stream for the clip's first person (Sec. 3.2)
  nonlocal_affinity.png   spatio-temporal non-local affinity of the first SLnL block of the position stream, for
                          one query position (--query=t,n; default the centre), over frames x transformed joints
  skeleton_attention.gif  the clip as the model sees it (inference.prepare_clip: centre crop resized to T frames),
                          every person present, joints coloured by the gradient saliency |d logit / d x| of
                          the predicted class summed over the coordinates (the prediction: inference.Predictor's,
                          every evaluation view; the logit: the mean of the heads config.dataset.eval_heads scores
                          with, on this one view). The non-local maps live on the N' joints of the skeleton
                          transformer, which mixes all input joints (Sec. 3.1); the saliency is what maps back to
                          the input joints.
  confusion_matrix.png    the last evaluation's confusion matrix (workdir/eval/confusion_matrix.npy) and
                          per-class accuracy
  learning_curves.png     training loss and eval top-1 per epoch (workdir/metrics.jsonl)
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from slnl_jax import config_checks, inference, models, steps, visualize
from slnl_jax.data import layouts, readers

_WORKDIR = flags.DEFINE_string("workdir", None, "A trained workdir (python -m slnl_jax.main ... --workdir=DIR).")
_INPUT = flags.DEFINE_string("input", None, "One raw skeleton file of any format slnl_jax.data.readers reads.")
_OUT = flags.DEFINE_string("out", None, "Output folder (default <workdir>/pictures).")
_CHECKPOINT = flags.DEFINE_string("checkpoint", "best", "'best' (by eval top-1), 'latest' or a step number.")
_QUERY = flags.DEFINE_string("query", None, "Query position 't,n' of the affinity map (default: the centre).")
flags.mark_flags_as_required(["workdir", "input"])

STREAM = "position_stream"


def parse_query(text: str | None, grid_shape: tuple[int, int]) -> tuple[int, int]:
  if text is None:
    return grid_shape[0] // 2, grid_shape[1] // 2
  try:
    t, n = (int(part) for part in text.split(","))
  except ValueError:
    raise app.UsageError(f"--query must be 't,n' (two integers), got {text!r}") from None
  return t, n


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  workdir = pathlib.Path(_WORKDIR.value)
  out = pathlib.Path(_OUT.value) if _OUT.value else workdir / "pictures"
  clip = readers.read_file(_INPUT.value)
  predictor = inference.Predictor.from_workdir(workdir, _CHECKPOINT.value)
  config, variables, names = predictor.config, predictor.variables, predictor.class_names
  try:
    x = jnp.asarray(inference.prepare_clip(clip.skeleton, config))
  except ValueError as e:
    raise ValueError(f"{_INPUT.value}: {e}") from e
  model = models.create_model(config)

  apply = jax.jit(model.apply, static_argnames=("train", "mutable"))
  _, state = apply(variables, x, train=False, mutable=("intermediates",))
  eval_heads = config_checks.saved_setting(config.dataset, "dataset.eval_heads")
  # The prediction as evaluation scores the clip (every evaluation view, the scored heads); the pictures show one.
  probabilities = predictor.probabilities(np.asarray(clip.skeleton)[None])[0]
  predicted = int(jnp.argmax(probabilities))
  probability = float(probabilities[predicted])

  def mean_logits(x: jax.Array) -> jax.Array:
    # The class score of gradient saliency (a logit, not a probability): the scored heads' mean.
    outputs = apply(variables, x, train=False)
    return jnp.mean(jnp.stack([outputs[head] for head in steps.scored_heads(eval_heads)]), axis=0)

  saliency, _ = visualize.input_saliency(mean_logits, x, jnp.array([predicted]))
  label = names[predicted]
  print(f"{_INPUT.value}: predicted {label} (p = {probability:.3f})")

  written = []
  frequency = f"{STREAM}/frequency_attention"
  masks = {name: visualize.sown(state["intermediates"], name) for name in ("fa_mask_cos", "fa_mask_sin")}
  if frequency in masks["fa_mask_cos"]:
    cos, sin = masks["fa_mask_cos"][frequency][0], masks["fa_mask_sin"][frequency][0]
    written.append(visualize.plot_frequency_masks(cos, sin, out / "frequency_masks.png").path)
  else:
    print(f"no M_cos / M_sin masks: config.model.frequency_attention is {config.model.frequency_attention!r}")

  affinity = visualize.sown(state["intermediates"], "st_affinity").get(f"{STREAM}/block_0/nonlocal_spatio_temporal")
  if affinity is not None:
    grid_shape = (config.dataset.num_frames, config.model.num_joints_out)  # block 0 runs before any pooling
    query = parse_query(_QUERY.value, grid_shape)
    written.append(visualize.plot_nonlocal_affinity(affinity[0], query, grid_shape, out / "nonlocal_affinity.png").path)
  else:
    print("no spatio-temporal non-local module in block 0 (config.model.num_slnl_blocks / nonlocal_kinds)")

  skeleton = np.asarray(x[0]).transpose(1, 0, 2, 3)  # (T, M, V, C)
  layout = layouts.for_num_joints(config.dataset.num_joints)
  written.append(
    visualize.animate_skeleton(
      skeleton,
      layout.bones if layout else (),  # an unknown layout is drawn as joints only
      saliency[0].transpose(1, 0, 2),  # (M, T, V) -> (T, M, V)
      out / "skeleton_attention.gif",
      image_coordinates=bool(layout and layout.image_coordinates),  # estimator pixels: y grows downwards
      title=f"{clip.name}: {label} ({probability:.2f})",
    ).path
  )

  confusion = workdir / "eval" / "confusion_matrix.npy"
  if not confusion.is_file():
    raise FileNotFoundError(f"{confusion} not found: the workdir has no evaluation yet (train or --mode=eval)")
  written.append(visualize.plot_confusion_matrix(np.load(confusion), names, out / "confusion_matrix.png").path)
  written.append(visualize.plot_learning_curves(workdir / "metrics.jsonl", out / "learning_curves.png").path)
  for path in written:
    print(f"wrote {path}")


if __name__ == "__main__":
  app.run(main)
