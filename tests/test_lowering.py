"""The NTU preset's train step lowered for GPU and TPU from this CPU: no serial loop (benchmarks/train_step.py).

`benchmarks/train_step.py --lower_for=...` exports the trainer's own step with `jax.export` for each platform
(nothing runs; no device needed) and counts the `stablehlo.while` ops of the lowered module. Every kernel `auto`
picks lowers from a CPU (the Pallas TPU kernel as a Mosaic custom call, the Pallas GPU kernel as a Triton one),
so all three platforms are checked in full.
"""

import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lowered() -> dict[str, dict[str, str]]:
  """Rows printed per platform by the benchmark's --lower_for, for the NTU preset at its batch of 32."""
  command = [
    sys.executable,
    "benchmarks/train_step.py",
    "--config=configs/ntu60_xsub.py",
    "--lower_for=cuda,tpu,cpu",
  ]
  result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  platforms: dict[str, dict[str, str]] = {}
  for line in result.stdout.splitlines():
    if line.startswith("--- "):
      rows = platforms.setdefault(line[4:], {})
    elif platforms and (row := re.match(r"(\S.*?)\s{2,}(\S.*)", line)):
      rows[row[1]] = row[2]
  return platforms


@pytest.mark.parametrize(("platform", "kernel"), [("cuda", "gpu_flash"), ("tpu", "tpu_flash")])
def test_ntu_step_has_no_serial_loop_on_accelerators(lowered, platform, kernel):
  rows = lowered[platform]
  assert rows["serial loops (stablehlo.while)"] == "0"
  assert rows["conv kernel gradient"] == "xla"
  assert rows["non-local spatio_temporal"].count(kernel) == 5  # M1 = 5 SLnL blocks
  assert "chunked" not in rows["non-local temporal"] + rows["non-local spatial"]


def test_loop_counter_sees_the_cpu_loops(lowered):
  """On CPU `auto` keeps the chunked non-local and the matmul kernel gradient, both lax.map loops.

  The longest is the temporal non-local's map over its groups: B * M * N' = 32 clips * 2 persons * 64 joints.
  """
  rows = lowered["cpu"]
  assert int(rows["serial loops (stablehlo.while)"]) > 0
  assert rows["largest trip count"] == str(32 * 2 * 64)


# Four CPU devices, batch-sharded (8, 256, 32) attention inputs, lowered for tpu and cuda with and without a mesh.
_SHARDED = textwrap.dedent(
  """
  import functools, re
  import jax, jax.numpy as jnp, numpy as np
  from jax import export
  from jax.sharding import NamedSharding, PartitionSpec as P
  from slnl_jax.models import nonlocal_attention as na

  mesh = jax.make_mesh((4,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  split = NamedSharding(mesh, P("data"))
  spec = jax.ShapeDtypeStruct((8, 256, 32), jnp.float32, sharding=split)
  triton = export.DisabledSafetyCheck.custom_call("__gpu$xla.gpu.triton")

  def grads(under_mesh):
    def loss(q, k, v):
      if under_mesh:
        with jax.sharding.use_abstract_mesh(mesh.abstract_mesh):
          return jnp.sum(na.auto_attention(q, k, v, "spatio_temporal") ** 2)
      return jnp.sum(na.auto_attention(q, k, v, "spatio_temporal") ** 2)
    return jax.jit(jax.grad(loss, argnums=(0, 1, 2)), in_shardings=(split,) * 3)

  for under_mesh in (True, False):
    for platform in ("tpu", "cuda"):
      text = export.export(grads(under_mesh), platforms=(platform,), disabled_checks=[triton])(spec, spec, spec)
      groups = re.findall(r"(?:tpu_custom_call|triton)[^\\n]*?\\(tensor<(\\d+)x", text.mlir_module())
      print(f"{platform} mesh={under_mesh} kernel groups={sorted(set(groups))}")

  rng = np.random.default_rng(0)
  q, k, v = [jax.device_put(rng.normal(size=(8, 128, 16)).astype(np.float32), split) for _ in range(3)]
  with jax.set_mesh(mesh):
    out = jax.jit(na.per_shard(functools.partial(na.gpu_flash_attention, interpret=True)))(q, k, v)
  print("error", float(jnp.abs(out - na.einsum_attention(q, k, v)).max()))
  """
)


def test_kernels_run_per_device_under_a_mesh_and_are_left_out_without_one():
  """XLA cannot partition a Pallas kernel (Mosaic refuses to lower one over several devices).

  Under a mesh the kernels are shard_mapped: each device's kernel sees 8 / 4 = 2 groups. Without one, a
  multi-device program falls back to the einsum, so it still lowers (for tpu it would otherwise fail).
  """
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(
    [sys.executable, "-c", _SHARDED], cwd=REPO, env=env, capture_output=True, text=True, check=False
  )
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.splitlines()
  for platform in ("tpu", "cuda"):
    assert f"{platform} mesh=True kernel groups=['2']" in lines
    assert f"{platform} mesh=False kernel groups=[]" in lines
  error = float(next(line for line in lines if line.startswith("error")).split()[1])
  assert error < 1e-5
