r"""Where a profiled train step spends its time: per model module (forward / backward) and per XLA op.

  python benchmarks/train_step.py --config=configs/ntu60_xsub.py --batch_size=8 --profile_dir=DIR
  python benchmarks/profile_summary.py --profile_dir=DIR [--depth=2] [--top=15]

`train_step.py --profile_dir` traces a few steps with `jax.profiler` (jax alone: it runs on a lent accelerator
machine, whose DIR comes back as files) and writes the compiled step's HLO text beside the trace. This script
reads the trace (`*.xplane.pb`, parsed with TensorFlow's copy of the profiler protos) and sums, per HLO op, the
time its events spent outside any other op's events on the same line (self time, so a loop is not counted
twice with its body). The HLO text names each op's source (`metadata={op_name=...}`: the jit/jvp/transpose path
and the flax module path), from which each op gets its module, e.g. `block_0/nonlocal_spatio_temporal` (both
streams together), and its direction: `forward` (jvp), `backward` (transpose) or `update` (everything else:
optimizer, loss reductions, copies XLA inserted).

Device planes (GPU / TPU) are summed over their streams; on CPU the host's threads are summed, so the total is
CPU time, and the shares are what to read. The share of the span with no line inside an op is idle time on a GPU
stream (its events are the kernels); on CPU it is not: XLA:CPU's thread pool also runs tasks outside op events.
"""

from __future__ import annotations

import collections
import itertools
import pathlib
import re
from typing import Any

from absl import app, flags

_PROFILE_DIR = flags.DEFINE_string("profile_dir", None, "Folder written by train_step.py --profile_dir.", required=True)
_DEPTH = flags.DEFINE_integer("depth", 2, "Module path components kept below the stream (block_0/nonlocal_...).")
_TOP = flags.DEFINE_integer("top", 15, "Number of single HLO ops listed.")
_BLOCK = re.compile(r"block_\d+/?")

_INSTRUCTION = re.compile(r'^\s*(?:ROOT\s+)?%?([\w.\-]+)\s*=.*?metadata=\{[^}]*?op_name="([^"]*)"')
_MODEL = "SLnLrFA"
_KERNEL = "(kernel) "


def op_sources(hlo_text: str) -> dict[str, str]:
  """HLO instruction name -> its metadata op_name, for every instruction of the module text that has one."""
  return {m.group(1): m.group(2) for m in map(_INSTRUCTION.match, hlo_text.splitlines()) if m}


def scope(op_name: str, depth: int) -> tuple[str, str]:
  """(module, direction) of an op_name such as 'jit(f)/transpose(jvp(SLnLrFA))/position_stream/block_0/conv/x'."""
  parts = op_name.split("/")
  direction = "backward" if "transpose(" in op_name else "forward" if "jvp(" in op_name else "update"
  model = next((i for i, part in enumerate(parts) if _MODEL in part), None)
  if model is None:
    return "(loss, optimizer, copies)", direction
  path = parts[model + 1 : -1]  # the last part is the primitive
  if path and path[0].endswith("_stream"):
    path = path[1:]
  return "/".join(path[:depth]) or "(model top level)", direction


def self_times(events: list[tuple[int, int, str]]) -> dict[str, int]:
  """Self time (ps) per op of one line's (start, duration, op) events: each event's duration minus the events it
  encloses."""
  totals: collections.Counter[str] = collections.Counter()
  stack: list[tuple[int, str]] = []  # (end, op) of the enclosing events
  for start, duration, op in sorted(events, key=lambda e: (e[0], -e[1])):
    while stack and stack[-1][0] <= start:
      stack.pop()
    if stack:
      totals[stack[-1][1]] -= duration
    totals[op] += duration
    stack.append((start + duration, op))
  return totals


def busy_lines(lines: list[list[tuple[int, int, str]]]) -> collections.Counter[int]:
  """Time (ps) during which k lines were inside an op, for each k, from the first op event to the last."""
  edges = []
  for events in lines:
    end = None
    for start, duration, _ in sorted(events):
      if end is None or start >= end:  # an outermost event (its nested ones lie inside it)
        edges += [(start, 1), (start + duration, -1)]
        end = start + duration
  edges.sort()
  histogram: collections.Counter[int] = collections.Counter()
  busy = 0
  for (time, change), (following, _) in itertools.pairwise(edges):
    busy += change
    histogram[busy] += following - time
  return histogram


def read_trace(path: pathlib.Path) -> tuple[str, list[list[tuple[int, int, str]]]]:
  """(planes read, their lines' (start ps, duration ps, HLO op) events) of an .xplane.pb.

  Device planes if there are any: their CUDA stream lines (events are kernels, named by the `hlo_op` XLA
  annotates them with; a kernel without one keeps its own name), else their `XLA Ops` line (TPU). Otherwise the
  host plane, whose threads' events with an `hlo_op` are XLA:CPU's ops."""
  from tensorflow.tsl.profiler.protobuf import xplane_pb2

  space = xplane_pb2.XSpace()
  space.ParseFromString(path.read_bytes())
  devices = [plane for plane in space.planes if plane.name.startswith("/device:")]
  planes = devices or [plane for plane in space.planes if plane.name == "/host:CPU"]
  lines = []
  for plane in planes:
    hlo_op_ids = {key for key, meta in plane.stat_metadata.items() if meta.name == "hlo_op"}
    chosen = plane.lines
    if devices:
      streams = [line for line in plane.lines if line.name.startswith("Stream")]
      chosen = streams or [line for line in plane.lines if line.name == "XLA Ops"]
    for line in chosen:
      offset = line.timestamp_ns * 1000
      events = ((e, _hlo_op(plane, hlo_op_ids, e, kernels=bool(devices))) for e in line.events)
      lines.append([(offset + e.offset_ps, e.duration_ps, op) for e, op in events if op])
  return ", ".join(plane.name for plane in planes), lines


def _hlo_op(plane: Any, hlo_op_ids: set[int], event: Any, *, kernels: bool) -> str | None:
  """The `hlo_op` stat of an event (on the event or its metadata, by value or by reference); a device kernel
  without one is named `(kernel) <its name>`, a host event without one is not an op (None)."""
  metadata = plane.event_metadata[event.metadata_id]
  for stat in (*event.stats, *metadata.stats):
    if stat.metadata_id in hlo_op_ids:
      return stat.str_value or plane.stat_metadata[stat.ref_value].name
  return f"{_KERNEL}{metadata.name}" if kernels else None


def print_table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
  print("\n| " + " | ".join(header) + " |\n|" + " --- |" * len(header))
  for row in rows:
    print("| " + " | ".join(map(str, row)) + " |")


def main(argv: list[str]) -> None:
  del argv
  folder = pathlib.Path(_PROFILE_DIR.value)
  traces = sorted(folder.glob("plugins/profile/*/*.xplane.pb"))
  if not traces:
    raise SystemExit(f"error: {folder}: no plugins/profile/*/*.xplane.pb (written by train_step.py --profile_dir)")
  hlo_file = folder / "train_step.hlo.txt"
  if not hlo_file.exists():  # without it every op would land in "(loss, optimizer, copies)"
    raise SystemExit(f"error: {hlo_file}: missing; the ops' modules come from it (train_step.py --profile_dir)")
  sources = op_sources(hlo_file.read_text())
  planes, lines = read_trace(traces[-1])
  totals: collections.Counter[str] = collections.Counter()
  for events in lines:
    totals.update(self_times(events))
  total = sum(totals.values())
  if not total:
    raise SystemExit(f"error: {traces[-1]}: no events with an hlo_op in {planes or 'any plane'}")
  busy = busy_lines(lines)
  span = sum(busy.values())
  print(f"trace {traces[-1]} ({planes}, {len(lines)} lines): {total / 1e9:.1f} ms of op self time in all")
  print(
    f"from the first op to the last {span / 1e9:.1f} ms; of that, lines inside an op: "
    + ", ".join(f"{k}: {100 * ps / span:.1f} %" for k, ps in sorted(busy.items()))
  )

  modules: collections.Counter[tuple[str, str]] = collections.Counter()
  for op, ps in totals.items():
    unnamed = op.startswith(_KERNEL)  # a device kernel XLA did not annotate: see the op table
    modules[("(kernels without an hlo_op)", "?") if unnamed else scope(sources.get(op, ""), _DEPTH.value)] += ps
  kinds: collections.Counter[str] = collections.Counter()
  for (module, _), ps in modules.items():
    kinds[_BLOCK.sub("", module) or "(block top level)"] += ps

  def ms_share(ps: int) -> tuple[str, str]:
    return f"{ps / 1e9:.1f}", f"{100 * ps / total:.1f} %"

  print_table(
    ("kind of module (all blocks, both directions)", "ms", "share"),
    [(kind, *ms_share(ps)) for kind, ps in kinds.most_common()],
  )
  print_table(
    ("module", "direction", "ms", "share"),
    [(module, direction, *ms_share(ps)) for (module, direction), ps in modules.most_common()],
  )
  print_table(
    ("HLO op", "ms", "share", "source"),
    [(op, *ms_share(ps), sources.get(op, "?")) for op, ps in totals.most_common(_TOP.value)],
  )


if __name__ == "__main__":
  app.run(main)
