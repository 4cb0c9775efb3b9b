r"""Non-local attention benchmark: each SLnL block's attention, forward and forward + backward, per implementation.

  python benchmarks/nonlocal_attention.py --config=configs/ntu60_xsub.py --batch_size=32 \
      [--impls=chunked,einsum] [--query_chunks=256,512] [--kinds=spatio_temporal] [--dtype=bfloat16]
  python benchmarks/nonlocal_attention.py --impls=gpu_flash,cudnn,einsum --dtype=bfloat16  # on a GPU

For every SLnL block and non-local kind of the config, the attention alone (`nonlocal_attention.ATTENTIONS`, the
embeddings and W_w left out) runs on random (G, P, L) inputs of the shapes the model gives it at this batch:
G groups (B * persons clips, times N or T for the temporal / spatial kinds), P positions, L = embed_ratio * C
channels. It prints the best of `--repeats` timings of the jitted forward and of the gradient of a scalar of its
output (forward + backward), and the rate of the forward + backward in GFLOP/s counted as 12 * G * P^2 * L (four
P x P x L matmuls forward and eight backward; `chunked` does two more to recompute the softmax, not counted).
The last lines sum each implementation over the blocks, times two for the model's two streams: that is the
attention's share of one train step. `--query_chunks` times `chunked` with other query-row chunk sizes.
`cudnn` (cuDNN's flash attention through `jax.nn.dot_product_attention`, GPU only, bfloat16) is a candidate
measured here and not used by the model; a variant that fails on a shape (P not a multiple of a kernel's block,
a dtype it lacks) prints the error.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from ml_collections import config_flags

from slnl_jax.models import nonlocal_attention

STREAMS = 2  # the position and the velocity stream run the same blocks


def attention_shapes(config: ml_collections.ConfigDict, batch_size: int, kinds: list[str]) -> list[tuple]:
  """(block, kind, G, P, L) of every non-local attention in one stream of the model."""
  model = config.model
  clips = batch_size * config.dataset.num_persons
  frames, joints = config.dataset.num_frames, model.num_joints_out
  shapes = []
  for block in range(model.num_slnl_blocks):
    for kind in kinds:
      groups, positions = {
        "temporal": (clips * joints, frames),
        "spatial": (clips * frames, joints),
        "spatio_temporal": (clips, frames * joints),
      }[kind]
      # Each stage's non-local reads the stage's input: the block's input for the temporal one (block 0 reads
      # the transform network's K * C channels), the block's own channels after the temporal convolution.
      channels = model.channels[block]
      if kind == "temporal":
        channels = model.channels[block - 1] if block else model.num_systems * config.dataset.num_channels
      shapes.append((block, kind, groups, positions, max(1, round(model.embed_ratio * channels))))
    if (block + 1) % model.pool_every == 0 and block + 1 < len(model.channels):
      frames, joints = frames // 2, joints // 2
  return shapes


def cudnn_attention(query: jax.Array, key: jax.Array, value: jax.Array) -> jax.Array:
  """cuDNN's fused flash attention, one head, scale 1: a GPU-only candidate (bfloat16/float16), not in the model."""
  heads = (query[:, :, None], key[:, :, None], value[:, :, None])
  return jax.nn.dot_product_attention(*heads, scale=1.0, implementation="cudnn")[:, :, 0]


def best_time(fn: Callable[..., object], *args: jax.Array, repeats: int) -> float:
  jax.block_until_ready(fn(*args))  # compile
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return min(times)


def define_shape_flags() -> None:
  """--config, --batch_size and --repeats, the flags of every per-block benchmark (this one, local_convolutions)."""
  config_flags.DEFINE_config_file("config", "configs/ntu60_xsub.py", "Model/data config.")
  flags.DEFINE_integer("batch_size", None, "Batch size (default: config.train.batch_size).")
  flags.DEFINE_integer("repeats", 3, "Timed runs of each function; the fastest is printed.")


def shape_flags() -> tuple[ml_collections.ConfigDict, int]:
  """The parsed config and batch size of `define_shape_flags`; prints the devices and the batch."""
  config = flags.FLAGS.config
  batch_size = flags.FLAGS.batch_size or config.train.batch_size
  print(f"{jax.device_count()} x {jax.devices()[0].device_kind}, batch {batch_size}, {STREAMS} streams")
  return config, batch_size


def define_flags() -> None:
  """The command line's flags; defined only when run as a script, so that tests can import `attention_shapes`."""
  define_shape_flags()
  flags.DEFINE_list(
    "impls", ["chunked"], f"Implementations, among {sorted([*nonlocal_attention.ATTENTIONS, 'cudnn'])}."
  )
  flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16"], "dtype of the query, key and value.")
  flags.DEFINE_list("query_chunks", [], "Query-row chunk sizes for `chunked` (default: its own).")
  flags.DEFINE_list("kinds", [], "Non-local kinds (default: config.model.nonlocal_kinds).")


def main(argv: list[str]) -> None:
  del argv
  args = flags.FLAGS
  config, batch_size = shape_flags()
  kinds = args.kinds or list(config.model.nonlocal_kinds)
  variants: dict[str, Callable[..., jax.Array]] = {}
  for name in args.impls:
    if name == "chunked" and args.query_chunks:
      for chunk in map(int, args.query_chunks):
        variants[f"chunked/{chunk}"] = lambda q, k, v, c=chunk: nonlocal_attention.chunked_attention(q, k, v, c)
    elif name == "cudnn":
      variants[name] = cudnn_attention
    else:
      variants[name] = nonlocal_attention.ATTENTIONS[name]
  print(f"{'block':>5} {'kind':<16} {'G':>6} {'P':>5} {'L':>4} {'impl':<14} {'fwd':>9} {'fwd+bwd':>9} {'GFLOP/s':>8}")
  rng = np.random.default_rng(0)
  totals = dict.fromkeys(variants, 0.0)
  for block, kind, groups, positions, embed in attention_shapes(config, batch_size, kinds):
    q, k, v = (jnp.asarray(rng.normal(0, 0.3, (groups, positions, embed)), args.dtype) for _ in range(3))
    for name, attention in variants.items():
      forward = jax.jit(attention)
      both = jax.jit(jax.grad(lambda q, k, v, a=attention: jnp.sum(a(q, k, v) * v), argnums=(0, 1, 2)))
      try:
        fwd_s = best_time(forward, q, k, v, repeats=args.repeats)
        both_s = best_time(both, q, k, v, repeats=args.repeats)
      except Exception as error:  # a kernel that does not take this shape or dtype: say so, time the rest
        print(f"{block:>5} {kind:<16} {groups:>6} {positions:>5} {embed:>4} {name:<14} failed: {error}"[:240])
        totals[name] = float("nan")
        continue
      totals[name] += STREAMS * both_s
      rate = 12 * groups * positions**2 * embed / both_s / 1e9
      print(
        f"{block:>5} {kind:<16} {groups:>6} {positions:>5} {embed:>4} {name:<14} "
        f"{fwd_s * 1e3:>7.1f}ms {both_s * 1e3:>7.1f}ms {rate:>8.1f}",
        flush=True,
      )
  for name, total in totals.items():
    print(f"per train step, {name}: {total:.2f} s (forward + backward, all blocks, {STREAMS} streams)")


if __name__ == "__main__":
  define_flags()
  app.run(main)
