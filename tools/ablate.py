r"""Runs the paper's ablation chain (Baseline1 -> 2 -> 3 -> full model, Tables 3-5) on one dataset config.

  python tools/ablate.py --config=configs/nw_ucla_cpu.py --study=chain --seeds=3 --workdir=workdirs/ablate_nwu
  python tools/ablate.py --config=configs/ntu60_xsub.py --study=frequency --seeds=1 --workdir=DIR \
      --config.train.num_epochs=50

--config is the full model (SLnL-rFA + SMFL); every variant is it plus presets of configs/ablations.py, with
the same budget, trained for seeds config.seed, config.seed + 1, .... Studies (slnl_jax/ablation.py): `chain`
(Baseline1, Baseline2, Baseline3, full model), `endpoints` (Baseline1 and the full model only), `loss`
(Table 3 on Baseline1), `frequency` (Table 4 on Baseline2), `affinity` (Table 5 on Baseline3), `all` (the
chain and Tables 3-5); --study repeated puts several in one report. Finished runs
(DIR/runs/<key>/seed_<s>/result.json, the key naming every setting that differs from --config) are reused and
unfinished ones resume, so an interrupted study continues where it stopped; with other evaluation settings
(--config.dataset.eval_clips / eval_turns / eval_offsets / eval_crop / eval_heads: config_checks.EVAL_SETTINGS)
each finished run's final checkpoint is evaluated again, not trained. The same command started several times
shares the runs out: each run is trained by one process under a lock, the others skip it and wait for its result
at the end (e.g. one process per GPU with CUDA_VISIBLE_DEVICES, or a few on a many-core CPU). Writes
DIR/report_<study>[+<study>...]_seeds<n>/: results.md (the tables, mean +- std of top-1 over seeds and every
seed), <study>.png bar charts, learning_curve.png (the full model) and results.json.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import sys
from collections.abc import Sequence

import jax
from absl import app, flags
from ml_collections import config_flags

from configs import ablations
from slnl_jax import ablation, checkpointing, config_checks, sharding, train

_CONFIG = config_flags.DEFINE_config_file("config", None, "The full model's config, e.g. configs/msr_action3d_cpu.py.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for every run and the report.")
_STUDY = flags.DEFINE_multi_enum(
  "study", ["all"], [*ablation.STUDIES, "all"], "Which table(s) to run, in one report (repeat the flag for several)."
)
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per variant: config.seed, config.seed + 1, ...", lower_bound=1)
_REPORT_DIR = flags.DEFINE_string(
  "report_dir", None, "Where results.md, results.json and the PNGs go (default: WORKDIR/report_<study>_seeds<n>)."
)
_CACHE_DIR = flags.DEFINE_string(
  "jax_cache_dir",
  os.path.join(os.path.expanduser("~"), ".cache", "slnl_jax", "xla"),
  "Persistent XLA compilation cache ('' disables it); the seeds of a variant then compile once.",
)
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  checkpointing.quiet_orbax_logs()
  sharding.quiet_platform_logs()
  if _CACHE_DIR.value:
    jax.config.update("jax_compilation_cache_dir", _CACHE_DIR.value)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  config = _CONFIG.value
  root = pathlib.Path(_WORKDIR.value)
  studies = ablation.ALL if "all" in _STUDY.value else tuple(_STUDY.value)
  seeds = [config.seed + i for i in range(_SEEDS.value)]
  try:
    config_checks.validate(config)
    tables = ablation.run_study(config, studies, seeds, root, ablations.apply)
  except (ablation.StudyError, *train.USER_ERRORS) as e:  # one error: line, not a traceback
    sys.exit(f"error: {e}")
  command = shlex.join(["python", "tools/ablate.py", *sys.argv[1:]])
  # One report folder per (study, seeds) request: a later request over the same runs adds a report beside it.
  out_dir = pathlib.Path(_REPORT_DIR.value or root / f"report_{'+'.join(_STUDY.value)}_seeds{_SEEDS.value}")
  report = ablation.write_report(
    tables, root, out_dir, command, seeds, ablation.run_key(config, config), config.dataset.eval_heads
  )
  print(report.read_text())


if __name__ == "__main__":
  app.run(main)
