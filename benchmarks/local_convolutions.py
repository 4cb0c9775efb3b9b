r"""Local convolution benchmark: each block's k x 1, 1 x k and k x k convolutions, as the train step runs them.

  python benchmarks/local_convolutions.py --config=configs/ntu60_xsub.py --batch_size=32 [--kernel_grads=xla,matmul]

For every convolution of the local blocks (Fig. 3b; every block has one of each, the SLnL blocks too) it runs
random inputs of the shapes the model gives it at this batch, (N, T, V, C_in) with N = batch x persons clips,
and prints the best of `--repeats` timings of the forward + input gradient (XLA's convolution and its transpose,
what every `conv_kernel_grad` uses) and of the forward + input gradient + kernel gradient for each
`--kernel_grads` (`blocks.CONV_KERNEL_GRADS`), with rates in GFLOP/s counted as 2 N T V kh kw C_in C_out per
pass. The last lines sum them over the blocks, times two for the model's two streams: the local convolutions'
share of one train step (the 1 x 1 projections left out). On a CPU compare the rates with the float32 matmul
peak `train_step.py` prints: benchmarks/README.md has the figures, and PyTorch's on the same shapes.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags
from nonlocal_attention import (  # a sibling script: benchmarks/ is sys.path[0] when run
  STREAMS,
  best_time,
  define_shape_flags,
  shape_flags,
)

from slnl_jax.models import blocks


def conv_shapes(config: ml_collections.ConfigDict, batch_size: int) -> list[tuple]:
  """(block, kind, N, T, V, C_in, C_out, kernel) of every local convolution in one stream of the model."""
  model = config.model
  clips = batch_size * config.dataset.num_persons
  frames, joints = config.dataset.num_frames, model.num_joints_out
  features = model.num_systems * config.dataset.num_channels  # the transform network's K * C channels
  shapes = []
  for block, (channels, k) in enumerate(zip(model.channels, model.kernel_sizes, strict=True)):
    stages = (("temporal", features, (k, 1)), ("spatial", channels, (1, k)), ("spatio_temporal", channels, (k, k)))
    for kind, c_in, kernel in stages:  # the temporal convolution changes the channels (LocalBlock)
      shapes.append((block, kind, clips, frames, joints, c_in, channels, kernel))
    features = channels
    if (block + 1) % model.pool_every == 0 and block + 1 < len(model.channels):
      frames, joints = frames // 2, joints // 2
  return shapes


def forward_backward(conv: Callable[..., jax.Array], with_kernel: bool) -> Callable[..., tuple]:
  """The jitted forward and the gradients a train step takes of it: the input's, and the kernel's if asked."""

  def apply(x: jax.Array, kernel: jax.Array) -> jax.Array:
    return conv(x, kernel, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def run(x: jax.Array, kernel: jax.Array, d_out: jax.Array) -> tuple:
    y, vjp = jax.vjp(apply, x, kernel) if with_kernel else jax.vjp(lambda x: apply(x, kernel), x)
    return y, *vjp(d_out)

  return jax.jit(run)


def define_flags() -> None:
  """The command line's flags; defined only when run as a script, so that tests can import `conv_shapes`."""
  define_shape_flags()
  flags.DEFINE_list("kernel_grads", ["xla", "matmul"], f"Kernel gradients, among {sorted(blocks.CONV_KERNEL_GRADS)}.")


def main(argv: list[str]) -> None:
  del argv
  args = flags.FLAGS
  config, batch_size = shape_flags()
  variants = {"fwd+dx": forward_backward(jax.lax.conv_general_dilated, with_kernel=False)}
  for name in args.kernel_grads:
    variants[f"+dw {name}"] = forward_backward(blocks.CONV_KERNEL_GRADS[name], with_kernel=True)
  header = "".join(f"{name:>22}" for name in variants)
  print(f"{'block':>5} {'kind':<16} {'N':>4} {'T':>4} {'V':>4} {'C_in':>5} {'C_out':>5} {'kernel':>6}{header}")
  rng = np.random.default_rng(0)
  totals = dict.fromkeys(variants, 0.0)
  for block, kind, clips, frames, joints, c_in, c_out, kernel in conv_shapes(config, batch_size):
    x = jnp.asarray(rng.normal(size=(clips, frames, joints, c_in)), jnp.float32)
    w = jnp.asarray(rng.normal(0, 0.1, (*kernel, c_in, c_out)), jnp.float32)
    d_out = jnp.asarray(rng.normal(size=(clips, frames, joints, c_out)), jnp.float32)
    flops = 2 * clips * frames * joints * kernel[0] * kernel[1] * c_in * c_out  # one pass
    cells = []
    for name, fn in variants.items():
      seconds = best_time(fn, x, w, d_out, repeats=args.repeats)
      totals[name] += STREAMS * seconds
      passes = 2 if name == "fwd+dx" else 3
      cells.append(f"{seconds * 1e3:>9.1f}ms {passes * flops / seconds / 1e9:>5.0f} GF/s")
    size = f"{kernel[0]}x{kernel[1]}"
    row = f"{block:>5} {kind:<16} {clips:>4} {frames:>4} {joints:>4} {c_in:>5} {c_out:>5} {size:>6}"
    print(row + "".join(f"{cell:>22}" for cell in cells), flush=True)
  for name, total in totals.items():
    print(f"per train step, {name}: {total:.2f} s (all blocks, {STREAMS} streams)")


if __name__ == "__main__":
  define_flags()
  app.run(main)
