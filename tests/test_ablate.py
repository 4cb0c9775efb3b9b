"""tools/ablate.py's logic (slnl_jax/ablation.py): aggregation, run sharing, resumption, one tiny real study."""

import dataclasses
import fcntl
import hashlib
import json
import math
import pathlib
import subprocess
import sys
import threading
import time

import jax
import numpy as np
import pytest

from configs import ablations, msr_action3d
from slnl_jax import ablation
from slnl_jax.data import msr_action3d as msr_classes

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _never_train(config, workdir):
  raise AssertionError(f"a finished run was trained again: {workdir}")


def test_row_mean_and_sample_std_by_hand():
  row = ablation.Row("x", "k", {0: 0.5, 1: 0.7, 2: 0.6}, wall_s=10.0)
  # mean 0.6; deviations -0.1, 0.1, 0 -> sample variance 0.02 / 2 = 0.01 -> std 0.1.
  assert row.mean == pytest.approx(0.6)
  assert row.std == pytest.approx(0.1)
  assert math.isnan(ablation.Row("x", "k", {3: 0.25}, wall_s=1.0).std)  # one seed: no spread to report


def test_markdown_table_cells():
  rows = [
    ablation.Row("CE", "a", {0: 0.5, 1: 0.7, 2: 0.6}, wall_s=12.4),
    ablation.Row("SMFL", "b", {0: 0.8, 1: 0.8, 2: 0.95}, wall_s=7.6),
  ]
  lines = ablation.markdown_table(rows).splitlines()
  assert len(lines) == 4
  assert [c.strip() for c in lines[0].strip("|").split("|")][-4:] == ["seed 0", "seed 1", "seed 2", "wall s / run"]
  ce = [c.strip() for c in lines[2].strip("|").split("|")]
  assert ce == ["CE", "`a`", "60.00 ± 10.00", "50.00", "70.00", "60.00", "12"]
  # mean 0.85; deviations -0.05, -0.05, 0.1 -> variance 0.015 / 2 -> std 0.0866.
  smfl = [c.strip() for c in lines[3].strip("|").split("|")]
  assert smfl[2] == "85.00 ± 8.66"
  one_seed = ablation.markdown_table([ablation.Row("FL", "c", {4: 0.123456}, wall_s=1.0)]).splitlines()[2]
  assert "±" not in one_seed and "12.35" in one_seed


def test_paper_choice_sentence_ranks_the_last_row():
  ce = ablation.Row("CE", "a", {0: 0.80, 1: 0.84}, wall_s=1.0)  # mean 82 %, sample std 2.83 points
  fl = ablation.Row("FL", "b", {0: 0.85, 1: 0.85}, wall_s=1.0)  # 85 %
  smfl = ablation.Row("SMFL", "c", {0: 0.83, 1: 0.83}, wall_s=1.0)  # 83 %: second of three
  assert ablation.paper_choice_sentence([ce, fl, smfl]) == (
    "The paper's choice, SMFL, ranks 2 of 3 by mean top-1 (83.00 %); FL is highest (85.00 %, 2.00 points more), "
    "where the paper ranks its choice first. The largest sample std over seeds is 2.83 points."
  )
  best = ablation.Row("SMFL", "c", {0: 0.9}, wall_s=1.0)
  assert ablation.paper_choice_sentence([ablation.Row("CE", "a", {0: 0.8}, wall_s=1.0), best]) == (
    "The paper's choice, SMFL, has the highest mean top-1 (90.00 %), as in the paper."
  )
  # 397 + 399 + 394 and 398 + 401 + 391 of 464 clips right: the same mean, summed in another order.
  m1 = ablation.Row("M1 = 1", "a", {0: 397 / 464, 1: 399 / 464, 2: 394 / 464}, wall_s=1.0)
  m2 = ablation.Row("M1 = 2", "b", {0: 398 / 464, 1: 401 / 464, 2: 391 / 464}, wall_s=1.0, choice=True)
  assert ablation.paper_choice_sentence([m1, m2]).startswith(
    "The paper's choice, M1 = 2, has the highest mean top-1 (85.49 %), tied with M1 = 1, as in the paper."
  )
  m3 = ablation.Row("M1 = 3", "c", {0: 0.8, 1: 0.8, 2: 0.8}, wall_s=1.0, choice=True)
  assert ablation.paper_choice_sentence([m1, dataclasses.replace(m2, choice=False), m3]).startswith(
    "The paper's choice, M1 = 3, ranks 3 of 3 by mean top-1 (80.00 %); M1 = 1 and M1 = 2 are highest (85.49 %, "
    "5.49 points more), where the paper ranks its choice first."
  )


def test_chain_presets_by_hand():
  base = msr_action3d.get_config()  # the full model: SMFL(2, 0.4), rFA, M1 = 2 of 4 blocks
  b1 = ablations.get_config("msr_action3d,baseline1")
  assert (b1.loss.name, b1.model.frequency_attention, b1.model.num_slnl_blocks) == ("cross_entropy", "none", 0)
  b2 = ablations.get_config("msr_action3d,baseline2")
  assert (b2.loss.name, b2.loss.gamma, b2.loss.margin) == ("smfl", 2.0, 0.4)
  assert (b2.model.frequency_attention, b2.model.num_slnl_blocks) == ("none", 0)
  b3 = ablations.get_config("msr_action3d,baseline3")
  assert (b3.loss.name, b3.model.frequency_attention, b3.model.num_slnl_blocks) == ("smfl", "residual", 0)
  other = ablations.get_config("msr_action3d,margin_0.6,gamma_1,nonlocal_temporal")
  assert (other.loss.gamma, other.loss.margin, other.model.nonlocal_kinds) == (1.0, 0.6, ("temporal",))
  assert base.model.channels == b1.model.channels  # a link changes nothing else
  with pytest.raises(ValueError, match="unknown ablation preset 'margin_x'"):
    ablations.get_config("msr_action3d,margin_x")


def test_run_key_names_every_difference():
  base = msr_action3d.get_config()
  assert ablation.run_key(base, base) == "base"
  same = ablations.get_config("msr_action3d")
  same.seed, same.dataset.manual_dir = 7, "/elsewhere"  # the seed has its own folder; where data lives is no setting
  assert ablation.run_key(same, base) == "base"
  variant = ablations.get_config("msr_action3d,gamma_1,margin_0.6")
  # The documented format: the settings by their last key, "~", sha256 of the full keys and values (8 hex).
  digest = hashlib.sha256(json.dumps({"loss.gamma": 1.0, "loss.margin": 0.6}, sort_keys=True).encode()).hexdigest()
  assert ablation.run_key(variant, base) == f"gamma=1.0+margin=0.6~{digest[:8]}"
  # The case: variants equal in (loss, FA, M1) but not in margin or non-local kinds never share a run.
  keys = {
    ablation.run_key(ablations.get_config(f"msr_action3d,{presets}"), base)
    for presets in ("margin_0.6", "margin_0.2", "nonlocal_temporal", "nonlocal_spatial")
  }
  assert len(keys) == 4


def _fake_train(calls):
  """A train_fn that logs a final evaluation at step 1 with top-1 = 0.01 * (number of the call)."""

  def train_fn(config, workdir):
    calls.append(workdir)
    record = {"step": 1, "split": "eval", "top1": len(calls) / 100, "top5": 1.0}
    (workdir / "metrics.jsonl").write_text(json.dumps(record) + "\n")

  return train_fn


def test_the_chain_shares_runs_with_its_tables(tmp_path, monkeypatch):
  monkeypatch.setattr(ablation, "_total_steps", lambda config, workdir: 1)
  base = msr_action3d.get_config()  # SMFL(2, 0.4), rFA, M1 = 2
  calls = []
  tables = ablation.run_study(base, ["chain", "loss", "frequency"], [0], tmp_path, ablations.apply, _fake_train(calls))
  # By hand: the chain's 4 configs; Table 3 adds FL, SMCE 0.4, SMCE 0.6 and SMFL(2, 0.6) (its CE row is Baseline1,
  # its SMFL(2, 0.4) row Baseline2); Table 4 adds aFA, sFA, dFA (no FA is Baseline2, rFA Baseline3).
  assert len(calls) == len(set(calls)) == 11
  chain = {row.label.split(":")[0]: row for row in tables["chain"]}
  loss = {row.label: row for row in tables["loss"]}
  frequency = {row.label: row for row in tables["frequency"]}
  assert loss["CE (Eq. 12) = Baseline1"].top1_by_seed == chain["Baseline1"].top1_by_seed
  assert loss["SMFL(2, 0.4) (Eq. 16)"].top1_by_seed == chain["Baseline2"].top1_by_seed
  assert loss["SMFL(2, 0.6)"].key != chain["Baseline2"].key
  assert frequency["no FA = Baseline2"].top1_by_seed == chain["Baseline2"].top1_by_seed
  assert frequency["rFA (residual) = Baseline3"].top1_by_seed == chain["Baseline3"].top1_by_seed
  assert chain["Full model"].key == "base"
  # The row the paper carries forward is the next link of the chain.
  assert [r.label for r in tables["loss"] if r.choice] == ["SMFL(2, 0.4) (Eq. 16)"]
  assert [r.label for r in tables["frequency"] if r.choice] == ["rFA (residual) = Baseline3"]
  assert [r.choice for r in tables["chain"]] == [False, False, False, True]
  # Finished runs are reused as they are.
  again = ablation.run_study(base, ["chain", "loss", "frequency"], [0], tmp_path, ablations.apply, _never_train)
  assert again == tables


def test_processes_sharing_a_study_skip_a_run_another_holds_then_read_its_result(tmp_path, monkeypatch):
  monkeypatch.setattr(ablation, "_total_steps", lambda config, workdir: 1)
  base = msr_action3d.get_config()
  baseline1 = ablation.variant_config(base, ablation.BASELINE1, 0, ablations.apply)
  held = ablation.run_dir(tmp_path, baseline1, base)  # another process is training Baseline1, seed 0
  held.mkdir(parents=True)
  calls, tables = [], {}
  with open(held.parent / ".seed_0.lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    study = threading.Thread(
      target=lambda: tables.update(
        ablation.run_study(base, ["endpoints"], [0, 1], tmp_path, ablations.apply, _fake_train(calls))
      )
    )
    study.start()
    deadline = time.monotonic() + 60
    while len(calls) < 3 and study.is_alive() and time.monotonic() < deadline:
      time.sleep(0.05)
    study.join(timeout=1)
    assert study.is_alive()  # waiting for the held run, after training the three others
    assert sorted(p.relative_to(tmp_path).as_posix() for p in calls) == sorted(
      [f"runs/{held.parent.name}/seed_1", "runs/base/seed_0", "runs/base/seed_1"]
    )
    result = {"top1": 0.5, "wall_s": 3.0, "eval": ablation.eval_settings(baseline1)}
    (held / "result.json").write_text(json.dumps(result))  # the other process finishes
    fcntl.flock(lock, fcntl.LOCK_UN)
  study.join(timeout=60)
  assert not study.is_alive() and len(calls) == 3  # its result was read, not trained again
  assert tables["endpoints"][0].top1_by_seed[0] == 0.5


def test_table5_sweeps_the_blocks_of_the_base():
  base = msr_action3d.get_config()  # four blocks
  rows, choice = ablation.study_variants("affinity", base)
  assert [r.label for r in rows] == [
    "Baseline3 (M1 = 0)", "tSLnL (M1 = 1)", "sSLnL (M1 = 1)", "SLnL (M1 = 1)", "SLnL (M1 = 2)", "SLnL (M1 = 3)",
    "SLnL (M1 = 4)",
  ]  # fmt: skip
  config = ablation.variant_config(base, rows[4], 0, ablations.apply)
  assert (
    ablation.run_key(config, base)
    == "base"
    == ablation.run_key(ablation.variant_config(base, choice, 0, ablations.apply), base)
  )


def test_a_run_of_another_config_is_never_reused(tmp_path):
  base = msr_action3d.get_config()
  baseline1 = ablation.variant_config(base, ablation.BASELINE1, 0, ablations.apply)
  run = ablation.run_dir(tmp_path, baseline1, base)
  run.mkdir(parents=True)
  (run / "result.json").write_text(json.dumps({"top1": 0.5, "wall_s": 1.0}))
  stored = json.loads(baseline1.to_json())
  stored["train"]["num_epochs"] = 15  # the same variant trained with another budget
  (run / "config.json").write_text(json.dumps(stored))
  with pytest.raises(
    ablation.StudyError, match=r"seed_0 was trained with another config \(train.num_epochs = 15 there, 60 now\)"
  ):
    ablation.run_study(base, ["endpoints"], [0], tmp_path, ablations.apply, _never_train)

  # Where the data lives and how often the run evaluated do not matter, nor a setting the code gained after the
  # run was trained (a result without its evaluation settings was scored with those of config.json, and with one
  # crop: eval_clips = 1).
  stored["train"]["num_epochs"] = base.train.num_epochs
  stored["dataset"]["manual_dir"] = "/elsewhere"
  stored["train"]["eval_every_epochs"] = base.train.eval_every_epochs + 7
  del stored["model"]["conv_kernel_grad"]
  del stored["dataset"]["eval_clips"], stored["dataset"]["eval_turns"], stored["dataset"]["align_joints"]
  (run / "config.json").write_text(json.dumps(stored))
  assert ablation.run_once(baseline1, run, _never_train, _never_evaluate) == {"top1": 0.5, "wall_s": 1.0}

  # A run trained before `align_joints` existed did not align its clips: not a run of an aligned config.
  aligned = baseline1.copy_and_resolve_references()
  aligned.dataset.align_joints = (4, 8)
  with pytest.raises(ablation.StudyError, match=r"another config \(dataset.align_joints = \[\] there, \[4, 8\] now\)"):
    ablation.run_once(aligned, run, _never_train, _never_evaluate)


def _never_evaluate(config, workdir):
  raise AssertionError(f"a run scored with these settings was evaluated again: {workdir}")


def test_other_evaluation_settings_evaluate_the_finished_runs_again_without_training(tmp_path, monkeypatch):
  monkeypatch.setattr(ablation, "_total_steps", lambda config, workdir: 1)
  base = msr_action3d.get_config()
  calls, evaluated = [], []

  def evaluate(config, workdir):  # logs an evaluation of the final checkpoint, top-1 = 0.5 + 0.1 * crops
    evaluated.append((workdir, config.dataset.eval_clips))
    record = {"step": 1, "split": "checkpoint_eval", "top1": 0.5 + config.dataset.eval_clips / 10, "top5": 1.0}
    with (workdir / "metrics.jsonl").open("a") as f:
      f.write(json.dumps(record) + "\n")

  first = ablation.run_study(base, ["endpoints"], [0], tmp_path, ablations.apply, _fake_train(calls), evaluate)
  assert len(calls) == 2 and evaluated == []  # trained and scored by training's own last evaluation
  assert [r.top1_by_seed for r in first["endpoints"]] == [{0: 0.01}, {0: 0.02}]

  crops = base.copy_and_resolve_references()
  crops.dataset.eval_clips = 5
  again = ablation.run_study(crops, ["endpoints"], [0], tmp_path, ablations.apply, _never_train, evaluate)
  assert [r.key for r in again["endpoints"]] == [r.key for r in first["endpoints"]]  # the same runs
  assert sorted(evaluated) == sorted((tmp_path / "runs" / r.key / "seed_0", 5) for r in first["endpoints"])
  assert [r.top1_by_seed for r in again["endpoints"]] == [{0: 1.0}, {0: 1.0}]
  result = json.loads((tmp_path / "runs" / "base" / "seed_0" / "result.json").read_text())
  assert result["eval"] == {
    "dataset.eval_crop": 0.95,
    "dataset.eval_clips": 5,
    "dataset.eval_turns": 1,
    "dataset.eval_offsets": 1,
    "dataset.eval_heads": "concat",
  }
  assert result["step"] == 1
  # Scored with these settings now: reused as it is, also where result.json predates a setting (eval_offsets: its
  # value then, 1); back to one crop: evaluated again.
  for path in (tmp_path / "runs").glob("*/seed_0/result.json"):
    older = json.loads(path.read_text())
    del older["eval"]["dataset.eval_offsets"]
    path.write_text(json.dumps(older))
  assert (
    ablation.run_study(crops, ["endpoints"], [0], tmp_path, ablations.apply, _never_train, _never_evaluate) == again
  )
  evaluated.clear()
  ablation.run_study(base, ["endpoints"], [0], tmp_path, ablations.apply, _never_train, evaluate)
  assert [clips for _, clips in evaluated] == [1, 1]


def test_a_rescoring_of_an_earlier_checkpoint_is_refused(tmp_path, monkeypatch):
  monkeypatch.setattr(ablation, "_total_steps", lambda config, workdir: 1)
  base = msr_action3d.get_config()
  ablation.run_study(base, ["endpoints"], [0], tmp_path, ablations.apply, _fake_train([]))

  def evaluate_earlier(config, workdir):  # the final checkpoint (step 1) is gone: "latest" is an earlier one
    with (workdir / "metrics.jsonl").open("a") as f:
      f.write(json.dumps({"step": 0, "split": "checkpoint_eval", "top1": 0.9, "top5": 1.0}) + "\n")

  crops = base.copy_and_resolve_references()
  crops.dataset.eval_clips = 5
  with pytest.raises(ablation.StudyError, match="its latest checkpoint is not the final step 1"):
    ablation.run_study(crops, ["endpoints"], [0], tmp_path, ablations.apply, _never_train, evaluate_earlier)


def test_confused_pairs_by_hand():
  confusion = np.array([[5, 2, 0], [4, 6, 1], [0, 2, 9]])
  assert ablation.confused_pairs(confusion) == [(1, 0, 4), (0, 1, 2), (2, 1, 2)]  # ties in class order
  assert ablation.confused_pairs(np.diag([3, 4])) == []  # no errors, no pairs


def _artifacts(workdir, split, confusion):
  (workdir / split).mkdir(parents=True, exist_ok=True)
  np.save(workdir / split / "confusion_matrix.npy", np.asarray(confusion))


def test_run_confusion_is_the_matrix_of_the_reported_evaluation_or_none(tmp_path):
  trained, rescored = [[3, 1], [0, 4]], [[4, 0], [1, 3]]  # top-1 7/8 both, different errors
  _artifacts(tmp_path, "eval", trained)
  _artifacts(tmp_path, "checkpoint_eval", rescored)
  np.testing.assert_array_equal(ablation.run_confusion(tmp_path, {"top1": 0.875, "artifacts": "eval"}), trained)
  np.testing.assert_array_equal(
    ablation.run_confusion(tmp_path, {"top1": 0.875, "artifacts": "checkpoint_eval"}), rescored
  )
  # A file whose accuracy is not the reported top-1 (overwritten since) is not used.
  assert ablation.run_confusion(tmp_path, {"top1": 0.75, "artifacts": "eval"}) is None
  # A result written before "artifacts": whichever scores its top-1; two that do and disagree: unknown.
  assert ablation.run_confusion(tmp_path, {"top1": 0.875}) is None
  _artifacts(tmp_path, "checkpoint_eval", [[2, 2], [0, 4]])
  np.testing.assert_array_equal(ablation.run_confusion(tmp_path, {"top1": 0.875}), trained)
  assert ablation.run_confusion(tmp_path / "missing", {"top1": 0.875}) is None


def test_the_errors_section_names_the_classes(tmp_path):
  report = _report(
    "python tools/ablate.py A", {"chain": [("B1", "k0", 0.8, 0.84, 10), ("full", "k1", 0.86, 0.88, 20)]}, "k1"
  )
  report["errors"] = {
    "class_names": ["walk", "run", "sit"],
    "confusion_key": "k1",
    "rows": [{"label": "full", "key": "k1", "errors": 7, "clips": 50, "pairs": [[1, 0, 4], [2, 1, 3]]}],
    "missing": ["k0"],
  }
  lines = ablation.render_report(report, "img/")
  assert "| full | `k1` | 7 / 50 | run -> walk (4); sit -> run (3) |" in lines
  assert "Not shown, a seed's confusion matrix of the reported evaluation being unknown: `k0`." in lines
  assert "![confusion matrix of `k1`](img/confusion_matrix.png)" in lines
  report["errors"] = {"missing": ["k0", "k1"]}  # none known: no table, no picture, but said
  lines = ablation.render_report(report, "img/")
  assert "Not shown, a seed's confusion matrix of the reported evaluation being unknown: `k0`, `k1`." in lines
  assert not any("confusion_matrix.png" in line or "errors / test clips" in line for line in lines)
  del report["errors"]  # a report written before the section
  assert not any("errors" in line for line in ablation.render_report(report))


def test_machine_names_the_cpu_its_vector_extension_and_an_xla_cap(monkeypatch):
  cpuinfo = pathlib.Path("/proc/cpuinfo")
  if not cpuinfo.exists():
    pytest.skip("no /proc/cpuinfo on this system")
  lines = cpuinfo.read_text().splitlines()
  model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
  flags = next(line.split(":", 1)[1].split() for line in lines if line.startswith("flags"))
  widest = next(e for e in ("avx512f", "avx2", "avx", "sse4_2") if e in flags)
  monkeypatch.delenv("XLA_FLAGS", raising=False)
  assert ablation.machine() == f"CPU {model} ({widest}), jax {jax.__version__}"
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=2 --xla_cpu_max_isa=SSE4_2")
  assert ablation.machine() == f"CPU {model} ({widest}, XLA capped at SSE4_2), jax {jax.__version__}"


def test_the_report_lists_the_machines_that_trained_its_runs(tmp_path):
  rows = [ablation.Row("B1", "k0", {0: 0.8, 1: 0.8}, 1.0), ablation.Row("full", "k1", {0: 0.9, 1: 0.9}, 1.0)]
  machines = {("k0", 0): "CPU A (avx2), jax 1", ("k0", 1): "CPU B (avx512f), jax 1", ("k1", 0): "CPU A (avx2), jax 1"}
  for key in ("k0", "k1"):
    for seed in (0, 1):
      run = tmp_path / "runs" / key / f"seed_{seed}"
      run.mkdir(parents=True)
      result = {"top1": 0.8} | ({"machine": machines[key, seed]} if (key, seed) in machines else {})
      (run / "result.json").write_text(json.dumps(result))
  # By hand: A trained two runs, B one, and k1's seed 1 finished before runs recorded it.
  listed = [["CPU A (avx2), jax 1", 2], ["CPU B (avx512f), jax 1", 1], [None, 1]]
  assert ablation._machines(ablation._run_results({"chain": rows}, tmp_path, [0, 1])) == listed
  report = _report(
    "python tools/ablate.py A", {"chain": [("B1", "k0", 0.8, 0.8, 1), ("full", "k1", 0.9, 0.9, 1)]}, "k1"
  )
  assert not any(line.startswith("Trained on") for line in ablation.render_report(report))  # written before it
  report["machines"] = listed
  assert (
    "Trained on: CPU A (avx2), jax 1 (2 runs); CPU B (avx512f), jax 1 (1 run); not recorded (1 run). Runs from "
    "different machines need not agree to the last digit (float round-off; docs/results.md)."
  ) in ablation.render_report(report)


def test_unknown_study_is_named(tmp_path):
  with pytest.raises(ValueError, match="unknown study 'lossy'"):
    ablation.run_study(msr_action3d.get_config(), ["lossy"], [0], tmp_path, ablations.apply, _never_train)


@pytest.mark.slow
def test_tiny_real_study_end_to_end(tmp_path, shared_data, monkeypatch):
  monkeypatch.setenv("SLNL_SHARED_DATA", str(shared_data))
  config = msr_action3d.get_config()
  config.dataset.data_dir = str(tmp_path / "tfds")  # one build shared by the runs
  config.dataset.num_frames = 8
  config.model.num_joints_out = 8
  config.model.num_systems = 2
  config.model.channels = (8, 8)
  config.model.kernel_sizes = (3, 3)
  config.model.num_slnl_blocks = 1
  config.train.num_epochs = 1
  config.train.steps_per_epoch = 2
  root = tmp_path / "study"

  tables = ablation.run_study(config, ["endpoints"], [0], root, ablations.apply)
  (root / "report").mkdir(parents=True)
  (root / "report" / "loss.png").write_bytes(PNG_MAGIC)  # an earlier report's study, not in this one
  report = ablation.write_report(tables, root, root / "report", "python tools/ablate.py ...", [0], "base")

  keys = [r.key for r in tables["endpoints"]]
  assert keys[0].startswith("name=cross_entropy+frequency_attention=none+num_slnl_blocks=0~") and keys[1] == "base"
  for row, key in zip(tables["endpoints"], keys, strict=True):
    records = [json.loads(line) for line in (root / "runs" / key / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    last_eval = [r for r in records if r["split"] == "eval"][-1]
    assert last_eval["step"] == 2
    assert row.top1_by_seed == {0: last_eval["concat_top1"]}
  text = report.read_text()
  assert "Baseline1: local blocks, no FA, CE" in text and "`base`" in text and "Top-1 of the concat head" in text
  stored = json.loads((root / "report" / "results.json").read_text())
  assert stored["seeds"] == [0] and stored["learning_curve"] == {"key": "base", "seed": 0}
  assert stored["eval_heads"] == "concat"
  assert [r["top1_by_seed"] for r in stored["studies"]["endpoints"]] == [
    {"0": r.top1_by_seed[0]} for r in tables["endpoints"]
  ]
  for name in ("endpoints.png", "learning_curve.png", "confusion_matrix.png"):
    assert (root / "report" / name).read_bytes()[:8] == PNG_MAGIC
  assert not (root / "report" / "loss.png").exists()
  # The errors: each run's confusion matrix from its own eval/ folder, the class names from its checkpoint.
  errors = stored["errors"]
  assert errors["class_names"] == list(msr_classes.CLASSES)
  for row, table_row in zip(errors["rows"], tables["endpoints"], strict=True):
    assert row["key"] == table_row.key
    assert row["errors"] == round(row["clips"] * (1 - table_row.top1_by_seed[0]))
    confusion = np.load(root / "runs" / row["key"] / "seed_0" / "eval" / "confusion_matrix.npy")
    assert row["pairs"][0][2] == (confusion - np.diag(np.diag(confusion))).max()
  assert "## Where the errors are (summed over the seeds)" in text and errors["missing"] == []
  # Both runs trained here: the report says so, once.
  assert stored["machines"] == [[ablation.machine(), 2]]
  assert f"Trained on: {ablation.machine()} (2 runs)." in text and "need not agree" not in text

  # Finished runs are reused as they are; an unfinished one is an error that says how to resume.
  again = ablation.run_study(config, ["endpoints"], [0], root, ablations.apply, _never_train)
  assert again == tables
  # Two evaluation crops: each run's final checkpoint is restored and evaluated again, not trained.
  crops = config.copy_and_resolve_references()
  crops.dataset.eval_clips = 2
  rescored = ablation.run_study(crops, ["endpoints"], [0], root, ablations.apply, _never_train)
  for row, key, before in zip(rescored["endpoints"], keys, tables["endpoints"], strict=True):
    records = [json.loads(line) for line in (root / "runs" / key / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    (rescore,) = [r for r in records if r["split"] == "checkpoint_eval"]
    assert rescore["step"] == 2 and row.top1_by_seed == {0: rescore["concat_top1"]}
    # Training's own evaluations (the learning curve) are as they were.
    assert [r for r in records if r["split"] == "eval"][-1]["concat_top1"] == before.top1_by_seed[0]
    assert json.loads((root / "runs" / key / "seed_0" / "result.json").read_text())["eval"]["dataset.eval_clips"] == 2
  # Scored by the mean of the three heads: each run evaluated once more, and the report says what scored it.
  heads = crops.copy_and_resolve_references()
  heads.dataset.eval_heads = "all"
  by_heads = ablation.run_study(heads, ["endpoints"], [0], root, ablations.apply, _never_train)
  for row, key in zip(by_heads["endpoints"], keys, strict=True):
    records = [json.loads(line) for line in (root / "runs" / key / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    rescores = [r for r in records if r["split"] == "checkpoint_eval"]
    assert len(rescores) == 2 and row.top1_by_seed == {0: rescores[-1]["top1"]}
  heads_report = ablation.write_report(by_heads, root, root / "heads", "python tools/ablate.py ...", [0], "base", "all")
  assert "Top-1 of the mean of the three heads" in heads_report.read_text()
  with pytest.raises(ablation.StudyError, match="stopped before its first evaluation, before its final step 2"):
    ablation.run_study(config, ["endpoints"], [5], root, ablations.apply, lambda config, workdir: None)
  assert not (root / "runs" / keys[0] / "seed_5" / "result.json").exists()


def _report(command, studies, curve_key, chain=True):
  return {
    "command": command,
    "seeds": [0, 1],
    "chain": chain,
    "studies": {
      study: [{"label": lab, "key": key, "top1_by_seed": {"0": a, "1": b}, "wall_s": w} for lab, key, a, b, w in rows]
      for study, rows in studies.items()
    },
    "learning_curve": {"key": curve_key, "seed": 0},
  }


def test_target_sentence_by_hand():
  rows = [
    ablation.Row("Baseline1", "a", {0: 0.80, 1: 0.84}, wall_s=1.0),  # 82 ± 2.83 %
    ablation.Row("full", "b", {0: 0.86, 1: 0.88}, wall_s=1.0),  # 87 ± 1.41 %
  ]
  assert ablation.target_sentence(rows, 0.85) == (
    "full: 87.00 ± 1.41 % top-1 over 2 seeds; the target of 85.00 % is met, 2.00 points above."
  )
  assert "the target of 90.00 % is missed by 3.00 points" in ablation.target_sentence(rows, 0.90)
  one_seed = [ablation.Row("full", "b", {0: 0.8}, wall_s=1.0)]
  assert ablation.target_sentence(one_seed, 0.85).startswith(
    "full: 80.00 % top-1 over 1 seed; the target of 85.00 % is missed by 5.00"
  )


def test_page_is_built_from_the_reports_results_json(tmp_path):
  target, tables = tmp_path / "results" / "target", tmp_path / "results" / "tables"
  for folder in (target, tables):
    folder.mkdir(parents=True)
  (target / "results.json").write_text(
    json.dumps(
      _report(
        "python tools/ablate.py A", {"chain": [("B1", "k0", 0.8, 0.84, 10), ("full", "k1", 0.86, 0.88, 20)]}, "k1"
      )
    )
  )
  loss = [("CE", "c", 0.9, 0.9, 5), ("SMFL", "k1", 0.86, 0.88, 20)]
  (tables / "results.json").write_text(json.dumps(_report("python tools/ablate.py B", {"loss": loss}, "k1")))
  page = ablation.write_page(
    "# Results\n\nintro text\n",
    [("At the preset", target), ("Table 3", tables)],
    tmp_path / "page.md",
    {"At the preset": 0.85},
  ).read_text()

  lines = page.splitlines()
  assert lines[:2] == ["# Results", ""] and "intro text" in lines
  summary = lines[lines.index("## Summary") + 2 : lines.index("## At the preset") - 1]
  assert summary == [
    "- **At the preset** (2 seeds)",
    "  - The chain: Baseline1 -> Baseline2 -> Baseline3 -> full model: full: 87.00 ± 1.41 % top-1 over 2 seeds; the "
    "target of 85.00 % is met, 2.00 points above. The paper's choice, full, has the highest mean top-1 (87.00 %), as "
    "in the paper. The largest sample std over seeds is 2.83 points.",
    "- **Table 3** (2 seeds)",
    "  - Table 3: loss function, on Baseline1: The paper's choice, SMFL, ranks 2 of 2 by mean top-1 (87.00 %); CE is "
    "highest "
    "(90.00 %, 3.00 points more), where the paper ranks its choice first. The largest sample std over seeds is 1.41 "
    "points.",
  ]
  assert "Command: `python tools/ablate.py B`" in lines
  assert "| CE | `c` | 90.00 ± 0.00 | 90.00 | 90.00 | 5 |" in lines
  # Images are linked relative to the page; report headings sit one level below the section's.
  assert "![loss](results/tables/loss.png)" in lines and "![learning curve](results/target/learning_curve.png)" in lines
  assert "### Table 3: loss function, on Baseline1" in lines


def test_the_paper_choice_is_the_marked_row_and_bold():
  rows = [
    ablation.Row("none", "a", {0: 0.7}, wall_s=1.0),
    ablation.Row("rFA", "b", {0: 0.6}, wall_s=1.0, choice=True),
    ablation.Row("aFA", "c", {0: 0.5}, wall_s=1.0),
  ]
  assert ablation.paper_choice_sentence(rows).startswith(
    "The paper's choice, rFA, ranks 2 of 3 by mean top-1 (60.00 %)"
  )
  assert ablation.markdown_table(rows).splitlines()[3].startswith("| **rFA** | `b` |")


def test_reports_written_before_the_chain_say_what_they_measured(tmp_path):
  # The earlier "baseline" study kept rFA on in the row it called Baseline1; its page says so, numbers unchanged.
  rows = [("Baseline1: local only + CE", "cross_entropy-residual-m1_2", 0.8, 0.84, 10), ("full", "k1", 0.86, 0.88, 2)]
  (tmp_path / "old").mkdir()
  loss = [("CE", "a", 0.8, 0.8, 1), ("SMFL", "k1", 0.86, 0.88, 2)]
  old = _report("old command", {"baseline": rows, "loss": loss}, "k1", chain=False)
  (tmp_path / "old" / "results.json").write_text(json.dumps(old))
  page = ablation.write_page("# R\n", [("Earlier", tmp_path / "old")], tmp_path / "page.md").read_text()
  assert "### Full model vs local only + CE (rFA kept on: not the paper's Baseline1)" in page
  assert "### Table 3's losses as one-factor changes of the full model (not on Baseline1)" in page
  assert (
    "| local only + CE, rFA on (not the paper's Baseline1) | `cross_entropy-residual-m1_2` | 82.00 ± 2.83 |" in page
  )
  assert "Baseline1: local only + CE" not in page


def test_results_page_cli(tmp_path):
  report = tmp_path / "report"
  report.mkdir()
  (report / "results.json").write_text(
    json.dumps(
      _report(
        "python tools/ablate.py A", {"affinity": [("local", "k0", 0.5, 0.5, 1), ("SLnL", "k1", 0.6, 0.6, 2)]}, "k1"
      )
    )
  )
  (tmp_path / "intro.md").write_text("# Page\n")
  command = [
    sys.executable,
    "tools/results_page.py",
    f"--intro={tmp_path / 'intro.md'}",
    f"--out={tmp_path / 'page.md'}",
  ]
  ok = subprocess.run([*command, f"--section=Study=A={report}"], capture_output=True, text=True, check=False)
  assert ok.returncode == 0, ok.stderr
  page = (tmp_path / "page.md").read_text()
  assert "## Study=A" in page and "The paper's choice, SLnL, has the highest mean top-1 (60.00 %)" in page

  unknown = [f"--section=Study=A={report}", "--target_top1=Study=B=90"]
  wrong = subprocess.run([*command, *unknown], capture_output=True, text=True, check=False)
  assert wrong.returncode != 0 and "no --section is titled 'Study=B'" in wrong.stderr
  missing = subprocess.run([*command, f"--section=B={tmp_path}"], capture_output=True, text=True, check=False)
  assert missing.returncode != 0 and f"{tmp_path / 'results.json'} does not exist" in missing.stderr


def _ablate(*args: str) -> subprocess.CompletedProcess:
  command = [sys.executable, "tools/ablate.py", "--config=configs/msr_action3d_cpu.py", "--study=endpoints", *args]
  return subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)


def test_the_tool_says_what_is_wrong_in_one_error_line(tmp_path):
  bad = _ablate(f"--workdir={tmp_path}", "--seeds=1", "--config.train.batch_size=0")
  assert bad.returncode == 1
  assert bad.stderr.strip().splitlines()[-1] == (
    "error: config.train.batch_size=0: must be an integer >= 1 (set it with --config.train.batch_size=...)"
  )
  # Both runs of the study hold a config.json of another budget: the first one the study reaches is named.
  from configs import msr_action3d_cpu

  base = msr_action3d_cpu.get_config()
  for row in (ablation.BASELINE1, ablation.FULL):
    variant = ablation.variant_config(base, row, 0, ablations.apply)
    run = ablation.run_dir(tmp_path, variant, base)
    run.mkdir(parents=True)
    stored = json.loads(variant.to_json())
    stored["train"]["num_epochs"] = 7
    (run / "config.json").write_text(json.dumps(stored))
  stale = _ablate(f"--workdir={tmp_path}", "--seeds=1")
  assert stale.returncode == 1
  last = stale.stderr.strip().splitlines()[-1]
  assert last.startswith(f"error: {tmp_path / 'runs'}/") and "was trained with another config" in last, stale.stderr
  assert f"train.num_epochs = 7 there, {base.train.num_epochs} now" in last
