r"""Exports a trained workdir's model as one `jax.export` file, weights included.

  python tools/export.py --workdir=workdirs/demo --out=model.jaxexport [--checkpoint=best] [--platforms=cpu,cuda,tpu]

(the same as `slnl-jax export ...`). Writes OUT, the serialized program from raw frames to class probabilities
(slnl_jax/inference.py: batch, frames and persons symbolic; lowered for every platform given), and OUT with the
suffix .json: class names and the input contract. Running it needs jax alone:

  exported = jax.export.deserialize(pathlib.Path("model.jaxexport").read_bytes())
  probabilities = exported.call(skeleton, num_frames)  # (B, T, M, V, C) float32, (B,) int32 -> (B, K)
"""

import sys

from slnl_jax import main

if __name__ == "__main__":
  main.cli(["export", *sys.argv[1:]])
