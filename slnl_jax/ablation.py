"""The paper's ablation studies (Tables 3-5) as one resumable run of many trainings, run as the paper runs them.

The paper (Sec. 4.3) builds its model as a chain and runs each table on one link of it:

  Baseline1 = transform network + local blocks, no frequency attention, cross-entropy
  Table 3 (losses, with the paper's gamma / margin pairs) on Baseline1
  Baseline2 = Baseline1 + SMFL;  Table 4 (no FA / aFA / sFA / dFA / rFA) on Baseline2
  Baseline3 = Baseline2 + rFA;   Table 5 (tSLnL, sSLnL, SLnL with M1 = 1, then M1 = 1 .. all blocks) on Baseline3
  full model = Baseline3 + SLnL blocks (the base config)

Every variant is the base config (the full model) plus presets of configs/ablations.py (`baseline1`,
`loss_smce`, `margin_0.6`, `fa_none`, `m1_0`, `nonlocal_temporal`, ...). A run's directory is named by every
setting in which its config differs from the base (`run_key`: the settings and a short hash of them; the base
itself is `base`), so variants that come out as the same config (the CE row of Table 3 is Baseline1, the rFA
row of Table 4 is Baseline3) share one training run per seed, and two variants that differ in anything, gamma
or margin included, never do. Each run trains in `<dir>/runs/<key>/seed_<seed>` and leaves `result.json` there
once its last evaluation is logged; a run with that file is never trained again, an unfinished one resumes
from its latest checkpoint (slnl_jax/train.py), and a run trained with another config is never reused
(`check_same_config`: the key is relative to the base, so a study rerun with another budget would otherwise
find the old runs). Evaluation-only settings (`EVAL_SETTINGS`: the crop ratio, the numbers of crops, turns and
starts, the heads that score a clip) are not part of the key: a study rerun with other ones evaluates each
finished run's final checkpoint again instead of training it again, and result.json records the settings its
top-1 was scored with and the machine that trained it (`machine`), which a report lists.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import re
import time
from collections.abc import Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tqdm import tqdm

from slnl_jax import checkpointing, config_checks, evaluation, file_lock, inference, steps, train, visualize

RESULT_FILE = "result.json"
ApplyPreset = Callable[[ml_collections.ConfigDict, str], ml_collections.ConfigDict]
TrainFn = Callable[[ml_collections.ConfigDict, pathlib.Path], Mapping[str, float]]
EvalFn = Callable[[ml_collections.ConfigDict, pathlib.Path], Mapping[str, float]]


def _evaluate_final(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Mapping[str, float]:
  """Evaluates the run's latest checkpoint (its final one once finished) and logs it to metrics.jsonl."""
  return train.evaluate_checkpoint(config, workdir, "latest")


@dataclasses.dataclass(frozen=True)
class Variant:
  """One row of a table: a label and the presets applied to the base config (none: the base = full model)."""

  label: str
  presets: tuple[str, ...] = ()


# The chain's links (configs/ablations.py CHAIN); the full model is the base config itself.
BASELINE1 = Variant("Baseline1: local blocks, no FA, CE", ("baseline1",))
BASELINE2 = Variant("Baseline2: Baseline1 + SMFL", ("baseline2",))
BASELINE3 = Variant("Baseline3: Baseline2 + rFA", ("baseline3",))
FULL = Variant("Full model: Baseline3 + SLnL (SLnL-rFA)")
STUDIES = ("chain", "endpoints", "loss", "frequency", "affinity")
TITLES = {
  "chain": "The chain: Baseline1 -> Baseline2 -> Baseline3 -> full model",
  "endpoints": "Full model vs the paper's Baseline1",
  "loss": "Table 3: loss function, on Baseline1",
  "frequency": "Table 4: frequency attention, on Baseline2",
  "affinity": "Table 5: tSLnL, sSLnL and SLnL blocks, on Baseline3",
}
# Reports written before the chain (results.json without "chain": true) ran every table as one-factor changes of
# the full model; their titles say so, and the row they called Baseline1 says what it was.
EARLIER_TITLES = {
  "baseline": "Full model vs local only + CE (rFA kept on: not the paper's Baseline1)",
  "loss": "Table 3's losses as one-factor changes of the full model (not on Baseline1)",
  "frequency": "Table 4's variants as one-factor changes of the full model (not on Baseline2; aFA kept the phase)",
  "affinity": "Local only (M1 = 0) vs SLnL, rFA and SMFL kept (not Table 5 on Baseline3)",
}
RELABEL = {"Baseline1: local only + CE": "local only + CE, rFA on (not the paper's Baseline1)"}
ALL = ("chain", "loss", "frequency", "affinity")  # what --study=all runs, in the order the tables are written


def study_variants(study: str, base: ml_collections.ConfigDict) -> tuple[tuple[Variant, ...], Variant]:
  """The rows of `study` on `base` and the row the paper carries forward (its choice, the next link).

  Table 3 uses the gamma / margin pairs of the paper's two protocols, SMFL(2, 0.4) (cross-subject) and
  SMFL(2, 0.6) (cross-view), and the same gamma (FL) and margins (SMCE) for the one-term losses; Baseline2 is
  the one with the base config's gamma and margin. Table 5 sweeps M1 over the base network's blocks (six in the
  paper, four in the CPU presets).

  Raises:
    ValueError: an unknown study.
  """
  on_b1 = ("fa_none", "m1_0")
  if study == "chain":
    return (BASELINE1, BASELINE2, BASELINE3, FULL), FULL
  if study == "endpoints":  # the chain's two ends, when there is no time for the whole chain
    return (BASELINE1, FULL), FULL
  if study == "loss":
    rows = (
      Variant("CE (Eq. 12) = Baseline1", (*on_b1, "loss_cross_entropy")),
      Variant("FL, gamma 2 (Eq. 15)", (*on_b1, "loss_focal_loss", "gamma_2")),
      Variant("SMCE, m 0.4 (Eq. 13)", (*on_b1, "loss_smce", "margin_0.4")),
      Variant("SMCE, m 0.6", (*on_b1, "loss_smce", "margin_0.6")),
      Variant("SMFL(2, 0.4) (Eq. 16)", (*on_b1, "loss_smfl", "gamma_2", "margin_0.4")),
      Variant("SMFL(2, 0.6)", (*on_b1, "loss_smfl", "gamma_2", "margin_0.6")),
    )
    return rows, BASELINE2
  if study == "frequency":
    rows = (
      Variant("no FA = Baseline2", ("baseline2",)),
      *(Variant(f"{name} FA", ("baseline2", f"fa_{name}")) for name in ("amplitude", "shared", "dependent")),
      Variant("rFA (residual) = Baseline3", ("baseline3",)),
    )
    return rows, BASELINE3
  if study == "affinity":
    rows = (
      Variant("Baseline3 (M1 = 0)", ("baseline3",)),
      Variant("tSLnL (M1 = 1)", ("baseline3", "m1_1", "nonlocal_temporal")),
      Variant("sSLnL (M1 = 1)", ("baseline3", "m1_1", "nonlocal_spatial")),
      *(
        Variant(f"SLnL (M1 = {m1})", ("baseline3", f"m1_{m1}", "nonlocal_all"))
        for m1 in range(1, len(base.model.channels) + 1)
      ),
    )
    return rows, FULL
  raise ValueError(f"unknown study {study!r}: choose from {list(STUDIES)}")


def variant_config(
  base: ml_collections.ConfigDict, variant: Variant, seed: int, apply_preset: ApplyPreset
) -> ml_collections.ConfigDict:
  """A copy of `base` with the variant's presets applied and `seed` set."""
  config = ml_collections.ConfigDict(base.to_dict())
  for preset in variant.presets:
    apply_preset(config, preset)
  config.seed = seed
  return config


class StudyError(Exception):
  """A run the study cannot use as it stands; the message names its directory and what to do."""


def config_diff(config: ml_collections.ConfigDict, base: ml_collections.ConfigDict) -> dict[str, object]:
  """Every setting of `config` that differs from `base`, except the seed and `NOT_COMPARED` (flat keys)."""
  wanted, reference = config_checks.flat_settings(config), config_checks.flat_settings(base)
  skip = _NOT_KEYED | {"seed"}
  return {k: v for k, v in sorted(wanted.items()) if k not in skip and (k not in reference or reference[k] != v)}


def run_key(config: ml_collections.ConfigDict, base: ml_collections.ConfigDict) -> str:
  """A variant's directory name: `base`, or its settings that differ from `base` and a short hash of them.

  E.g. `frequency_attention=none+name=cross_entropy+num_slnl_blocks=0~3f1c2a9b`: the readable part names each
  setting by its last key (cut at 80 characters), the hash covers the full keys and values, so equal configs
  share a directory and configs that differ in anything never do.
  """
  diff = config_diff(config, base)
  if not diff:
    return "base"

  def value(v: object) -> str:
    return "-".join(map(str, v)) if isinstance(v, list) else str(v)

  readable = "+".join(f"{k.rsplit('.', 1)[-1]}={value(v)}" for k, v in diff.items())[:80]
  digest = hashlib.sha256(json.dumps(diff, sort_keys=True).encode()).hexdigest()[:8]
  return f"{readable}~{digest}"


def run_dir(root: pathlib.Path, config: ml_collections.ConfigDict, base: ml_collections.ConfigDict) -> pathlib.Path:
  return root / "runs" / run_key(config, base) / f"seed_{config.seed}"


def _last_eval(metrics_path: pathlib.Path, split: str) -> dict | None:
  if not metrics_path.exists():
    return None
  evals = [r for r in visualize.read_metrics(metrics_path) if r.get("split") == split]
  return evals[-1] if evals else None


def _total_steps(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> int:
  """The global step at which `train.train_and_evaluate` stops (and evaluates a last time)."""
  return steps.total_steps(config, train.load_data(config, workdir).num_train)


# Settings that do not change what a run computes (paths, logging, evaluation and checkpoint frequency).
NOT_COMPARED = config_checks.NOT_COMPARED
# Settings that only change how the final checkpoint is scored. A run is keyed and reused without them; when
# they differ from those its result.json was scored with, the final checkpoint is evaluated again (no training).
EVAL_SETTINGS = config_checks.EVAL_SETTINGS
_NOT_KEYED = NOT_COMPARED | frozenset(EVAL_SETTINGS)  # neither in a run's key nor compared with its config.json


def _pick_eval_settings(flat: Mapping[str, object]) -> dict[str, object]:
  return {key: flat.get(key) for key in EVAL_SETTINGS}


def eval_settings(config: ml_collections.ConfigDict) -> dict[str, object]:
  """`config`'s `EVAL_SETTINGS` by flat key, as result.json records them."""
  return _pick_eval_settings(config_checks.flat_settings(config))


def _scored_with(result: Mapping, workdir: pathlib.Path) -> dict[str, object] | None:
  """The evaluation settings behind result.json's top-1 (results written before they were recorded: the run's
  config.json); None if unknown."""
  if "eval" in result:
    return _pick_eval_settings(config_checks.with_earlier_settings(result["eval"]))
  stored = config_checks.read_saved_config(workdir)
  return None if stored is None else _pick_eval_settings(stored)


def check_same_config(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> None:
  """Raises if `workdir` holds a run trained with another config than `config`.

  Run directories are named by how a variant differs from the study's base, so a study rerun into the same
  --workdir with another base (epochs, lr decay, T, ...) would otherwise reuse or resume runs of the old one.
  Compared: every setting present both in `config` and in the run's `config.json` (written by
  `train.train_and_evaluate`) except `NOT_COMPARED`; a setting the code gained after the run was trained is
  compared with the value it had before (`config_checks.BEFORE_THE_KEY`) where that is known, else not compared.

  Raises:
    StudyError: naming each setting that differs, with both values.
  """
  differ = config_checks.changed_settings(config, workdir, _NOT_KEYED)
  if differ:
    changes = "; ".join(differ)
    raise StudyError(f"{workdir} was trained with another config ({changes}): give this study its own --workdir")


def run_once(
  config: ml_collections.ConfigDict, workdir: pathlib.Path, train_fn: TrainFn, evaluate_fn: EvalFn = _evaluate_final
) -> dict:
  """Trains one variant/seed unless `workdir/result.json` exists; returns that file's content.

  `artifacts` in it names the folder of `workdir` whose confusion matrix belongs to its top-1 (`run_confusion`).

  The result is the last evaluation in `workdir/metrics.jsonl` once it is at the final step; a run stopped
  earlier (SIGTERM) raises, and rerunning resumes it. `wall_s` is the time this tool spent training it
  (summed over resumptions), `machine` what finished training it (`machine()`). A run trained with another
  config is never reused (`check_same_config`). A finished run scored with other `EVAL_SETTINGS` than `config`'s
  has its final checkpoint evaluated again (`evaluate_fn`) and its result rewritten.

  Raises:
    StudyError: the run stopped before its final step, or `workdir` holds a run of another config.
  """
  check_same_config(config, workdir)
  result_path = workdir / RESULT_FILE
  scoring = eval_settings(config)
  if result_path.exists():
    result = json.loads(result_path.read_text())
    if _scored_with(result, workdir) != scoring:
      evaluate_fn(config, workdir)
      rescored = _final_eval(workdir, "checkpoint_eval", result["step"])
      result = {**result, **rescored, "eval": scoring, "artifacts": "checkpoint_eval"}
      evaluation.write_atomic(result_path, json.dumps(result, indent=2) + "\n")
    return result
  workdir.mkdir(parents=True, exist_ok=True)
  spent_path = workdir / "wall_s.txt"  # survives an interrupted run so that resumptions add up
  start = time.perf_counter()
  train_fn(config, workdir)
  wall_s = time.perf_counter() - start + (float(spent_path.read_text()) if spent_path.exists() else 0.0)
  evaluation.write_atomic(spent_path, f"{wall_s}\n")
  last = _final_eval(workdir, "eval", _total_steps(config, workdir))
  result = {**last, "seed": config.seed, "wall_s": wall_s, "eval": scoring, "artifacts": "eval", "machine": machine()}
  evaluation.write_atomic(result_path, json.dumps(result, indent=2) + "\n")
  return result


# The vector extensions XLA's CPU backend compiles for, widest first (the /proc/cpuinfo flag names).
_CPU_EXTENSIONS = ("avx512f", "avx2", "avx", "sse4_2")


def machine() -> str:
  """What trains here, as a run's result.json records it: the accelerator kind and count, or on a CPU its model
  and the widest vector extension XLA may use (with XLA_FLAGS' `--xla_cpu_max_isa` cap, when set), and jax's
  version. On a CPU the extension sets the float round-off: the same run with the same code, data and seed, compiled
  for SSE4.2 instead of AVX-512, ended one clip apart on MSR Action3D (docs/results.md), so runs from different
  machines need not agree to the last digit."""
  device = jax.devices()[0]
  if device.platform != "cpu":
    return f"{jax.device_count()} x {device.device_kind}, jax {jax.__version__}"
  cpuinfo = pathlib.Path("/proc/cpuinfo")
  text = cpuinfo.read_text() if cpuinfo.exists() else ""
  model = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
  flags = re.search(r"^flags\s*:\s*(.+)$", text, re.MULTILINE)
  widest = next((e for e in _CPU_EXTENSIONS if flags and e in flags.group(1).split()), None)
  cap = re.search(r"--xla_cpu_max_isa=(\S+)", os.environ.get("XLA_FLAGS", ""))
  extension = ", ".join(filter(None, [widest, cap and f"XLA capped at {cap.group(1)}"]))
  name = f"CPU {model.group(1).strip() if model else 'of unknown model'}"
  return f"{name}{f' ({extension})' if extension else ''}, jax {jax.__version__}"


def _final_eval(workdir: pathlib.Path, split: str, total: int) -> dict[str, float]:
  """{top1, top5, step} of the run's last logged evaluation of `split` ("eval": training's own;
  "checkpoint_eval": a rescoring), which must be at the run's final step `total`."""
  last = _last_eval(workdir / "metrics.jsonl", split)
  if last is not None and last["step"] == total:
    return {"top1": last["top1"], "top5": last["top5"], "step": total}
  if split == "checkpoint_eval":
    raise StudyError(
      f"{workdir}: its latest checkpoint is not the final step {total} (removed?), so the finished run cannot be "
      "scored with these evaluation settings; train it again in a new --workdir"
    )
  where = "before its first evaluation" if last is None else f"at step {last['step']}"
  raise StudyError(
    f"{workdir}: training stopped {where}, before its final step {total} (preempted?); run the same command "
    "again to resume it"
  )


def run_confusion(workdir: pathlib.Path, result: Mapping) -> np.ndarray | None:
  """The (K, K) confusion matrix (rows = true class) of the evaluation whose top-1 `result` (the run's
  result.json) reports: `workdir/<result["artifacts"]>/confusion_matrix.npy`, or, for a result written before
  that key, whichever of eval/ and checkpoint_eval/ scores that top-1. None when there is no such file, its
  accuracy is not the reported top-1 (overwritten since, e.g. by a --mode=eval with other settings) or the two
  candidates disagree: never a matrix of another evaluation."""
  splits = [result["artifacts"]] if "artifacts" in result else ["eval", "checkpoint_eval"]
  found = []
  for split in splits:
    path = workdir / split / "confusion_matrix.npy"
    if path.exists():
      confusion = np.load(path)
      total = confusion.sum()
      if total and abs(np.trace(confusion) / total - result["top1"]) < 0.5 / total:
        found.append(confusion)
  if not found or any(not np.array_equal(found[0], other) for other in found[1:]):
    return None
  return found[0]


def confused_pairs(confusion: np.ndarray, top: int = 3) -> list[tuple[int, int, int]]:
  """The `top` most frequent errors of a confusion matrix as (true class, predicted class, count), most first
  (ties by class order)."""
  errors = confusion * (1 - np.eye(len(confusion), dtype=confusion.dtype))
  order = np.argsort(-errors, axis=None, kind="stable")[:top]
  pairs = [(int(i), int(j), int(errors[i, j])) for i, j in zip(*np.unravel_index(order, errors.shape), strict=True)]
  return [pair for pair in pairs if pair[2] > 0]


def _class_names(workdir: pathlib.Path, num_classes: int) -> list[str]:
  """The class names of the run's latest checkpoint (`inference.checkpoint_info`), else the class indices."""
  names = None
  try:
    checkpoints = checkpointing.Checkpointer(checkpointing.directory_of(workdir), create=False)
    try:
      step = checkpoints.latest_step()
      names = inference.checkpoint_info(checkpoints, step, workdir)["class_names"] if step is not None else None
    finally:
      checkpoints.close()
  except checkpointing.CheckpointError:
    pass  # no readable checkpoint: the indices
  return list(names) if names and len(names) == num_classes else [str(k) for k in range(num_classes)]


@dataclasses.dataclass(frozen=True)
class Row:
  """One variant's top-1 accuracies (fractions) by seed and its mean training wall time."""

  label: str
  key: str
  top1_by_seed: dict[int, float]
  wall_s: float
  choice: bool = False  # the row the paper carries forward (its best)

  @property
  def mean(self) -> float:
    return float(np.mean(list(self.top1_by_seed.values())))

  @property
  def std(self) -> float:
    """Sample standard deviation over seeds (ddof = 1); NaN for a single seed."""
    values = list(self.top1_by_seed.values())
    return float(np.std(values, ddof=1)) if len(values) > 1 else math.nan


def run_study(
  base: ml_collections.ConfigDict,
  studies: Sequence[str],
  seeds: Sequence[int],
  root: pathlib.Path,
  apply_preset: ApplyPreset,
  train_fn: TrainFn = train.train_and_evaluate,
  evaluate_fn: EvalFn = _evaluate_final,
) -> dict[str, list[Row]]:
  """Trains every (variant, seed) of `studies` not yet finished under `root` and returns the rows per study.

  Runs are trained seed by seed (every variant of the first seed, then of the next, ...), so a study stopped
  early has all its variants at the first seeds. Several processes given the same study and `root` share the
  work: each run is trained under an exclusive lock (`runs/<key>/.seed_<s>.lock`); a process skips runs another
  one holds, trains the rest, then waits for the skipped ones and reads their results.
  """
  plans = {study: study_variants(study, base) for study in studies}
  configs = {
    (study, i, seed): variant_config(base, variant, seed, apply_preset)
    for seed in seeds
    for study, (variants, _) in plans.items()
    for i, variant in enumerate(variants)
  }
  unique = {run_dir(root, c, base): c for c in configs.values()}
  results = {}
  pending = list(unique.items())
  with tqdm(total=len(unique), desc="ablation runs", unit="run") as bar:
    for blocking in (False, True):  # first the runs no other process holds, then wait for the others
      held_elsewhere = []
      for workdir, config in pending:
        with file_lock.exclusive(workdir.parent / f".{workdir.name}.lock", blocking=blocking) as held:
          if not held:
            held_elsewhere.append((workdir, config))
            continue
          bar.set_postfix_str(f"{workdir.parent.name} seed {config.seed}")
          results[workdir] = run_once(config, workdir, train_fn, evaluate_fn)
        bar.update()
      pending = held_elsewhere
  tables = {}
  for study, (variants, choice) in plans.items():
    choice_key = run_key(variant_config(base, choice, seeds[0], apply_preset), base)
    rows = []
    for i, variant in enumerate(variants):
      runs = [results[run_dir(root, configs[study, i, seed], base)] for seed in seeds]
      key = run_key(configs[study, i, seeds[0]], base)
      rows.append(
        Row(
          label=variant.label,
          key=key,
          top1_by_seed={seed: r["top1"] for seed, r in zip(seeds, runs, strict=True)},
          wall_s=float(np.mean([r["wall_s"] for r in runs])),
          choice=key == choice_key,
        )
      )
    tables[study] = rows
  return tables


def _percent(value: float) -> str:
  return f"{100 * value:.2f}"


def _mean_std(row: Row) -> str:
  return _percent(row.mean) + ("" if math.isnan(row.std) else f" ± {_percent(row.std)}")


def markdown_table(rows: Sequence[Row]) -> str:
  """A Markdown table: variant (the paper's choice in bold), run directory, top-1 mean +- sample std over seeds
  (%), each seed, wall time."""
  seeds = list(rows[0].top1_by_seed)
  header = ["variant", "run", "top-1 % (mean ± std)", *[f"seed {s}" for s in seeds], "wall s / run"]
  lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
  for row in rows:
    cells = [
      f"**{row.label}**" if row.choice else row.label,
      f"`{row.key}`",
      _mean_std(row),
      *[_percent(row.top1_by_seed[s]) for s in seeds],
      f"{row.wall_s:.0f}",
    ]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines)


def _choice(rows: Sequence[Row]) -> Row:
  """The paper's choice: the row marked so, or the last row (reports written before rows were marked)."""
  return next((row for row in rows if row.choice), rows[-1])


def paper_choice_sentence(rows: Sequence[Row]) -> str:
  """Where the paper's choice ranks by mean top-1, and how that compares with the seed spread."""
  choice = _choice(rows)
  top = max(row.mean for row in rows)
  # Means of equal counts of correct clips can differ in the last bits (summed in another order): a tie.
  best = [row.label for row in rows if row is not choice and abs(row.mean - top) <= 1e-9]
  rank = 1 + sum(row.mean > choice.mean + 1e-9 for row in rows)
  stds = [row.std for row in rows if not math.isnan(row.std)]
  spread = f" The largest sample std over seeds is {_percent(max(stds))} points." if stds else ""
  if rank == 1:
    shared = f", tied with {' and '.join(best)}" if best else ""
    return (
      f"The paper's choice, {choice.label}, has the highest mean top-1 ({_percent(choice.mean)} %){shared}, as in "
      "the paper." + spread
    )
  return (
    f"The paper's choice, {choice.label}, ranks {rank} of {len(rows)} by mean top-1 ({_percent(choice.mean)} %); "
    f"{' and '.join(best)} {'is' if len(best) == 1 else 'are'} highest ({_percent(top)} %, "
    f"{_percent(top - choice.mean)} points more), where the paper ranks its choice first.{spread}"
  )


def plot_study(rows: Sequence[Row], title: str, path: str | pathlib.Path) -> pathlib.Path:
  """Bar chart of mean top-1 per variant, sample-std error bars, and each seed as a dot."""
  # Agg canvas, no pyplot (as in slnl_jax/visualize.py): no global backend state.
  fig = Figure(figsize=(max(4.0, 1.4 * len(rows)), 4), layout="constrained")
  FigureCanvasAgg(fig)
  ax = fig.subplots()
  x = np.arange(len(rows))
  means = [100 * r.mean for r in rows]
  errors = [0.0 if math.isnan(r.std) else 100 * r.std for r in rows]
  ax.bar(x, means, yerr=errors, capsize=4, color="tab:blue", alpha=0.7)
  for i, row in enumerate(rows):
    values = [100 * v for v in row.top1_by_seed.values()]
    ax.plot([i] * len(values), values, "o", color="black", markersize=3)
  ax.set_xticks(x, [r.label for r in rows], rotation=20, ha="right", fontsize=8)
  ax.set_ylabel("top-1 (%)")
  ax.set_title(title)
  ax.grid(axis="y", alpha=0.3)
  fig.savefig(path, dpi=100)
  return pathlib.Path(path)


def _title(report: Mapping, study: str) -> str:
  return TITLES[study] if report.get("chain") else EARLIER_TITLES[study]


def _tables(report: Mapping) -> dict[str, list[Row]]:
  """The rows of each study of a report as stored in `results.json`."""
  return {
    study: [
      Row(
        RELABEL.get(r["label"], r["label"]),
        r["key"],
        {int(s): top1 for s, top1 in r["top1_by_seed"].items()},
        r["wall_s"],
        r.get("choice", False),
      )
      for r in rows
    ]
    for study, rows in report["studies"].items()
  }


def render_report(report: Mapping, image_dir: str = "", level: int = 1) -> list[str]:
  """Markdown lines of a report as stored in `results.json` (see `write_report`).

  `image_dir` is prefixed to the PNG names (the report folder as seen from the page that shows it); `level` is
  the Markdown heading level of the report's title, its tables one below.
  """
  head = "#" * level
  seeds = report["seeds"]
  # Reports written before the key were all scored by the concat head.
  scored_by = config_checks.SCORED_BY[report.get("eval_heads", "concat")]
  lines = [
    f"Command: `{report['command']}`",
    "",
    f"Seeds: {', '.join(map(str, seeds))} ({len(seeds)} seed{'s' * (len(seeds) > 1)}). Top-1 of the {scored_by}"
    " on the test split after the last epoch; mean ± sample standard deviation over seeds; in bold, the row the"
    " paper carries forward.",
  ]
  machines = report.get("machines")  # reports written before it have none
  if machines:
    listed = "; ".join(f"{machine or 'not recorded'} ({n} run{'s' * (n > 1)})" for machine, n in machines)
    caution = " Runs from different machines need not agree to the last digit (float round-off; docs/results.md)."
    lines += ["", f"Trained on: {listed}.{caution if len(machines) > 1 else ''}"]
  for study, rows in _tables(report).items():
    lines += ["", f"{head}# {_title(report, study)}", "", markdown_table(rows), "", paper_choice_sentence(rows)]
    lines += ["", f"![{study}]({image_dir}{study}.png)"]
  errors = report.get("errors")  # reports written before it have none
  if errors:
    lines += ["", f"{head}# Where the errors are (summed over the seeds)", ""]
    if errors.get("rows"):
      names = errors["class_names"]
      lines += [
        "| variant | run | errors / test clips | most confused: true -> predicted (count) |",
        "|---|---|---|---|",
      ]
      for row in errors["rows"]:
        pairs = "; ".join(f"{names[i]} -> {names[j]} ({n})" for i, j, n in row["pairs"])
        lines.append(f"| {row['label']} | `{row['key']}` | {row['errors']} / {row['clips']} | {pairs} |")
    if errors["missing"]:
      runs = ", ".join(f"`{run}`" for run in errors["missing"])
      lines += ["", f"Not shown, a seed's confusion matrix of the reported evaluation being unknown: {runs}."]
    if errors.get("rows"):
      lines += ["", f"![confusion matrix of `{errors['confusion_key']}`]({image_dir}confusion_matrix.png)"]
  curve = report["learning_curve"]
  lines += ["", f"{head}# Learning curve (`{curve['key']}`, seed {curve['seed']})", ""]
  lines += [
    "The evaluations logged during training, scored with the evaluation settings the run was trained with (a"
    " table above rescored with other ones, e.g. more evaluation views, can differ at the last epoch).",
    "",
  ]
  return [*lines, f"![learning curve]({image_dir}learning_curve.png)"]


def _run_results(
  tables: Mapping[str, Sequence[Row]], root: pathlib.Path, seeds: Sequence[int]
) -> dict[tuple[str, int], dict]:
  """Each run's result.json by (run key, seed), the runs in the order the tables first name them."""
  runs = dict.fromkeys(row.key for rows in tables.values() for row in rows)
  return {
    (run, seed): json.loads((root / "runs" / run / f"seed_{seed}" / RESULT_FILE).read_text())
    for run in runs
    for seed in seeds
  }


def _errors(
  tables: Mapping[str, Sequence[Row]],
  root: pathlib.Path,
  seeds: Sequence[int],
  results: Mapping[tuple[str, int], Mapping],
  key: str,
  path: pathlib.Path,
) -> dict:
  """Each variant's errors summed over seeds and its most confused classes; `path` the summed confusion matrix
  of run `key` (the full model). A variant with a seed whose matrix is unknown (`run_confusion`) is left out.
  `results`: `_run_results`."""
  labels = {}
  for rows in tables.values():
    for row in rows:
      labels.setdefault(row.key, row.label)
  summed = {}
  for run in labels:
    matrices = [run_confusion(root / "runs" / run / f"seed_{seed}", results[run, seed]) for seed in seeds]
    if all(m is not None for m in matrices):
      summed[run] = np.sum(matrices, axis=0)
  missing = [run for run in labels if run not in summed]
  if not summed:
    path.unlink(missing_ok=True)
    return {"missing": missing}
  shown = key if key in summed else next(iter(summed))
  names = _class_names(root / "runs" / shown / f"seed_{seeds[0]}", len(summed[shown]))
  visualize.plot_confusion_matrix(summed[shown], names, path)
  rows = [
    {
      "label": labels[run],
      "key": run,
      "errors": int(matrix.sum() - np.trace(matrix)),
      "clips": int(matrix.sum()),
      "pairs": confused_pairs(matrix),
    }
    for run, matrix in summed.items()
  ]
  return {"class_names": names, "confusion_key": shown, "rows": rows, "missing": missing}


def _machines(results: Mapping[tuple[str, int], Mapping]) -> list[list]:
  """[machine, runs] for each machine that trained the runs of `results` (`_run_results`; their "machine", None
  where a run finished before it was recorded), most runs first."""
  counts = collections.Counter(result.get("machine") for result in results.values())
  return [[machine, n] for machine, n in counts.most_common()]


def write_report(
  tables: Mapping[str, Sequence[Row]],
  root: pathlib.Path,
  out_dir: pathlib.Path,
  command: str,
  seeds: Sequence[int],
  curve_key: str,
  eval_heads: str = "concat",
) -> pathlib.Path:
  """Writes `out_dir/results.md` and `results.json`, one `<study>.png` per study, `learning_curve.png` and
  `confusion_matrix.png` (the full model's, summed over the seeds).

  The plots of studies a reused `out_dir` held before and this report lacks are deleted.

  `root` holds the runs (`root/runs/...`). The learning curve is that of run `curve_key` (the base config,
  i.e. the full model) at the first seed, or of the first row when no table contains that run. `eval_heads`
  (config.dataset.eval_heads) names what scored the top-1s.
  `results.json` holds everything results.md shows: {"command", "seeds", "eval_heads", "chain": true, "studies": {study:
  [row, ...]}, "learning_curve": {"key", "seed"}, "errors": {"class_names", "confusion_key", "rows": [{"label",
  "key", "errors", "clips", "pairs"}, ...], "missing": [key, ...]}, "machines": [[machine or None, runs], ...]},
  each study row `Row`'s fields plus its "mean" and "std".
  """
  out_dir.mkdir(parents=True, exist_ok=True)
  for study in (TITLES.keys() | EARLIER_TITLES.keys()) - tables.keys():  # a reused report dir shows only these
    (out_dir / f"{study}.png").unlink(missing_ok=True)
  studies = {}
  for study, rows in tables.items():
    plot_study(rows, TITLES[study], out_dir / f"{study}.png")
    studies[study] = [dataclasses.asdict(row) | {"mean": row.mean, "std": row.std} for row in rows]
  keys = [row.key for rows in tables.values() for row in rows]
  key = curve_key if curve_key in keys else keys[0]
  curve_source = root / "runs" / key / f"seed_{seeds[0]}" / "metrics.jsonl"
  visualize.plot_learning_curves(curve_source, out_dir / "learning_curve.png")
  results = _run_results(tables, root, seeds)  # each run's result.json, read once
  report = {
    "command": command,
    "seeds": list(seeds),
    "eval_heads": eval_heads,
    "chain": True,  # the studies are the chain's (reports before it had one-factor studies: EARLIER_TITLES)
    "studies": studies,
    "learning_curve": {"key": key, "seed": seeds[0]},
    "errors": _errors(tables, root, seeds, results, key, out_dir / "confusion_matrix.png"),
    "machines": _machines(results),
  }
  (out_dir / "results.json").write_text(json.dumps(report, indent=2) + "\n")
  path = out_dir / "results.md"
  path.write_text("\n".join(["# Ablation results", "", *render_report(report), ""]))
  return path


def target_sentence(rows: Sequence[Row], target: float) -> str:
  """Whether the full model (the last row of the chain) reaches `target` top-1 (a fraction) on average."""
  full = rows[-1]
  n = len(full.top1_by_seed)
  gap = full.mean - target
  verdict = f"met, {_percent(gap)} points above" if gap >= 0 else f"missed by {_percent(-gap)} points"
  return (
    f"{full.label}: {_mean_std(full)} % top-1 over {n} seed{'s' * (n > 1)}; "
    f"the target of {_percent(target)} % is {verdict}."
  )


def write_page(
  intro: str,
  sections: Sequence[tuple[str, pathlib.Path]],
  out: pathlib.Path,
  targets: Mapping[str, float] | None = None,
) -> pathlib.Path:
  """Writes one Markdown page: `intro`, a summary, then one section per (title, report folder of `write_report`).

  The summary gives, per report, its number of seeds, where the paper's choice ranks in each table and, for a
  section title in `targets` (title -> a top-1 fraction), whether the full model of its chain (or the earlier
  baseline study) reaches that target. Every number comes from the reports' `results.json`, so rerunning the
  reports' commands and this regenerates the page.
  """
  targets = targets or {}
  reports = [(title, folder, json.loads((folder / "results.json").read_text())) for title, folder in sections]
  lines = [intro.rstrip(), "", "## Summary", ""]
  for title, _, report in reports:
    n = len(report["seeds"])
    lines.append(f"- **{title}** ({n} seed{'s' * (n > 1)})")
    for study, rows in _tables(report).items():
      chain = study in ("chain", "endpoints", "baseline") and title in targets
      check = target_sentence(rows, targets[title]) + " " if chain else ""
      lines.append(f"  - {_title(report, study)}: {check}{paper_choice_sentence(rows)}")
  for title, folder, report in reports:
    image_dir = pathlib.Path(os.path.relpath(folder, out.parent)).as_posix() + "/"
    lines += ["", f"## {title}", "", *render_report(report, image_dir, level=2)]
  out.write_text("\n".join([*lines, ""]))
  return out
