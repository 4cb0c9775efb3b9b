"""benchmarks/profile_summary.py: self times, busy lines and module scopes by hand; a real profiled demo step."""

import re
import subprocess
import sys

import pytest
from conftest import REPO_ROOT as REPO
from conftest import load_benchmark

summary = load_benchmark("profile_summary")


def test_self_time_subtracts_only_the_directly_enclosed_events():
  # a [0, 10) holds b [2, 5), which holds d [3, 4), and c [6, 8); a runs again at [20, 25).
  events = [(20, 5, "a"), (2, 3, "b"), (0, 10, "a"), (6, 2, "c"), (3, 1, "d")]
  assert summary.self_times(events) == {"a": (10 - 3 - 2) + 5, "b": 3 - 1, "c": 2, "d": 1}


def test_busy_lines_counts_overlaps_and_gaps():
  # Line 1 busy [0, 10) (with a nested event) and [12, 14); line 2 busy [5, 15).
  lines = [[(0, 10, "a"), (1, 2, "b"), (12, 2, "c")], [(5, 10, "d")]]
  # [0, 5): 1, [5, 10): 2, [10, 12): 1, [12, 14): 2, [14, 15): 1.
  assert summary.busy_lines(lines) == {1: 5 + 2 + 1, 2: 5 + 2}
  assert summary.busy_lines([[(0, 2, "a"), (4, 2, "b")]]) == {1: 4, 0: 2}


@pytest.mark.parametrize(
  ("op_name", "expected"),
  [
    (
      "jit(traced)/transpose(jvp(SLnLrFA))/position_stream/block_0/nonlocal_spatio_temporal/psi/dot_general",
      ("block_0/nonlocal_spatio_temporal", "backward"),
    ),
    ("jit(traced)/jvp(SLnLrFA)/velocity_stream/block_3/bn/mul", ("block_3/bn", "forward")),
    ("jit(traced)/jvp(SLnLrFA)/velocity_stream/transform/coordinate/dot_general", ("transform/coordinate", "forward")),
    ("jit(traced)/jvp(SLnLrFA)/head_concat/dot_general", ("head_concat", "forward")),
    ("jit(traced)/jvp(SLnLrFA)/concatenate", ("(model top level)", "forward")),
    ("jit(traced)/add", ("(loss, optimizer, copies)", "update")),
    ("", ("(loss, optimizer, copies)", "update")),
  ],
)
def test_scope_of_an_op_name(op_name, expected):
  assert summary.scope(op_name, 2) == expected


def test_op_sources_reads_instruction_metadata():
  hlo = "\n".join(
    [
      "ENTRY %main.1 (p: f32[2]) -> f32[2] {",
      '  %fusion.3 = f32[2]{0} fusion(f32[2]{0} %p), kind=kLoop, calls=%f, metadata={op_name="jit(f)/sin" '
      'source_file="x.py" source_line=3}',
      "  ROOT %copy.1 = f32[2]{0} copy(f32[2]{0} %fusion.3)",
      '  ROOT %dot.7 = f32[2]{0} dot(%a, %b), metadata={op_type="dot_general" op_name="jit(f)/dot_general"}',
      "}",
    ]
  )
  assert summary.op_sources(hlo) == {"fusion.3": "jit(f)/sin", "dot.7": "jit(f)/dot_general"}


def _summarise(folder, *flags):
  return subprocess.run(
    [sys.executable, "benchmarks/profile_summary.py", f"--profile_dir={folder}", *flags],
    cwd=REPO,
    capture_output=True,
    text=True,
    check=False,
  )


def test_a_profiled_demo_step_is_broken_down_by_module(tmp_path):
  """The real path: train_step.py traces the demo's step with jax.profiler, the summary reads the trace."""
  run = [sys.executable, "benchmarks/train_step.py", "--config=configs/demo.py", "--steps=1", "--profile_steps=1"]
  result = subprocess.run([*run, f"--profile_dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  result = _summarise(tmp_path, "--top=3")
  assert result.returncode == 0, result.stderr[-3000:]
  kinds = dict(re.findall(r"^\| ([^|]+?) \| [\d.]+ \| ([\d.]+) % \|$", result.stdout, re.MULTILINE))
  # Every kind of module of the demo's SLnL blocks shows up, and the ops' sources were found: the time left
  # without a module (loss, optimizer, XLA's copies) is a minority.
  for kind in ("nonlocal_spatio_temporal", "nonlocal_temporal", "nonlocal_spatial", "conv_temporal", "bn"):
    assert float(kinds[kind]) > 0, kinds
  assert float(kinds["(loss, optimizer, copies)"]) < 50, kinds
  assert sum(map(float, kinds.values())) == pytest.approx(100, abs=1)
  assert re.search(r"lines inside an op: 0: [\d.]+ %", result.stdout)


def test_a_folder_without_a_trace_is_one_error_line(tmp_path):
  result = _summarise(tmp_path)
  assert result.returncode != 0
  assert f"error: {tmp_path}: no plugins/profile/*/*.xplane.pb" in result.stderr


def test_a_trace_without_the_step_hlo_text_is_one_error_line(tmp_path):
  # Without the HLO text no op could be named: an error, not a table with everything in one row.
  trace = tmp_path / "plugins" / "profile" / "run" / "host.xplane.pb"
  trace.parent.mkdir(parents=True)
  trace.write_bytes(b"")
  result = _summarise(tmp_path)
  assert result.returncode != 0
  assert f"error: {tmp_path / 'train_step.hlo.txt'}: missing" in result.stderr
  assert result.stderr.count("error:") == 1


def test_a_gpu_trace_is_read_from_its_stream_lines(tmp_path):
  """A hand-built device plane: kernels on a CUDA stream line, named by their hlo_op stat (or their own name),
  and a derived 'XLA Ops' line over the same span that must not be counted again; the host plane is ignored."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2

  space = xplane_pb2.XSpace()
  host = space.planes.add(name="/host:CPU")
  host.lines.add(name="python").events.add(metadata_id=1, offset_ps=0, duration_ps=10**9)
  host.event_metadata[1].name = "host work"
  gpu = space.planes.add(name="/device:GPU:0")
  gpu.stat_metadata[7].name = "hlo_op"
  gpu.stat_metadata[8].name = "fusion.3"  # a stat value stored by reference, as the profiler does for strings
  for key, name in ((1, "loop_fusion_kernel"), (2, "triton_kernel"), (3, "memcpy"), (4, "fusion.3")):
    gpu.event_metadata[key].name = name
  stream = gpu.lines.add(name="Stream #13(Compute)", timestamp_ns=1)
  stream.events.add(metadata_id=1, offset_ps=0, duration_ps=500).stats.add(metadata_id=7, ref_value=8)
  stream.events.add(metadata_id=2, offset_ps=600, duration_ps=300).stats.add(metadata_id=7, str_value="dot.4")
  stream.events.add(metadata_id=3, offset_ps=1000, duration_ps=100)
  gpu.lines.add(name="XLA Ops", timestamp_ns=1).events.add(metadata_id=4, offset_ps=0, duration_ps=500)
  path = tmp_path / "vm.xplane.pb"
  path.write_bytes(space.SerializeToString())

  planes, lines = summary.read_trace(path)
  assert planes == "/device:GPU:0"
  assert lines == [[(1000, 500, "fusion.3"), (1600, 300, "dot.4"), (2000, 100, "(kernel) memcpy")]]
  # From 1000 to 2100 ps the stream is inside a kernel for 900 ps and idle for 200.
  assert summary.busy_lines(lines) == {1: 900, 0: 200}


def test_a_tpu_trace_is_read_from_its_xla_ops_line(tmp_path):
  """TPU planes have no stream lines: their ops are on the 'XLA Ops' line (the module line spans them all)."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2

  space = xplane_pb2.XSpace()
  tpu = space.planes.add(name="/device:TPU:0")
  tpu.stat_metadata[1].name = "hlo_op"
  tpu.event_metadata[1].name = "convolution.2"
  tpu.event_metadata[2].name = "jit_train_step"
  tpu.lines.add(name="XLA Modules").events.add(metadata_id=2, offset_ps=0, duration_ps=1000)
  ops = tpu.lines.add(name="XLA Ops")
  ops.events.add(metadata_id=1, offset_ps=100, duration_ps=400).stats.add(metadata_id=1, str_value="convolution.2")
  path = tmp_path / "vm.xplane.pb"
  path.write_bytes(space.SerializeToString())
  assert summary.read_trace(path) == ("/device:TPU:0", [[(100, 400, "convolution.2")]])
