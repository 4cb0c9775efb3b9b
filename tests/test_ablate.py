"""tools/ablate.py's logic (slnl_jax/ablation.py): aggregation, run sharing, resumption, one tiny real study."""

import json
import math
import subprocess
import sys

import pytest

from configs import ablations, msr_action3d
from slnl_jax import ablation

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


def test_equal_variants_share_runs_and_finished_runs_are_reused(tmp_path):
  base = msr_action3d.get_config()  # the full model: smfl, residual FA, M1 = 2
  planted = {  # Table 3 has 4 runs, Table 4 has 5, one of them (smfl + residual) in both: 8 runs per seed.
    "cross_entropy-residual-m1_2": 0.10,
    "focal_loss-residual-m1_2": 0.20,
    "smce-residual-m1_2": 0.30,
    "smfl-residual-m1_2": 0.90,
    "smfl-none-m1_2": 0.40,
    "smfl-amplitude-m1_2": 0.50,
    "smfl-shared-m1_2": 0.60,
    "smfl-dependent-m1_2": 0.70,
  }
  for key, top1 in planted.items():
    for seed in (0, 1):
      run = tmp_path / "runs" / key / f"seed_{seed}"
      run.mkdir(parents=True)
      (run / "result.json").write_text(json.dumps({"top1": top1 + seed / 100, "wall_s": 5.0}))
  tables = ablation.run_study(base, ["loss", "frequency"], [0, 1], tmp_path, ablations.apply, _never_train)
  assert len(list((tmp_path / "runs").iterdir())) == 8
  loss = [(r.key, r.top1_by_seed) for r in tables["loss"]]
  assert loss[0] == ("cross_entropy-residual-m1_2", {0: 0.10, 1: 0.11})
  assert loss[3] == ("smfl-residual-m1_2", {0: 0.90, 1: 0.91})
  assert [r.top1_by_seed[0] for r in tables["frequency"]] == [0.40, 0.50, 0.60, 0.70, 0.90]


def test_a_run_of_another_config_is_never_reused(tmp_path):
  base = msr_action3d.get_config()
  run = tmp_path / "runs" / "cross_entropy-residual-m1_0" / "seed_0"  # Baseline1's run directory
  run.mkdir(parents=True)
  (run / "result.json").write_text(json.dumps({"top1": 0.5, "wall_s": 1.0}))
  stored = json.loads(ablation.variant_config(base, ablation.STUDIES["baseline"][0], 0, ablations.apply).to_json())
  stored["train"]["num_epochs"] = 15  # the same variant trained with another budget
  (run / "config.json").write_text(json.dumps(stored))
  with pytest.raises(
    ValueError, match=r"seed_0 was trained with another config \(train.num_epochs = 15 there, 60 now\)"
  ):
    ablation.run_study(base, ["baseline"], [0], tmp_path, ablations.apply, _never_train)

  # Where the data lives does not matter, nor a setting the code gained after the run was trained.
  stored["train"]["num_epochs"] = base.train.num_epochs
  stored["dataset"]["manual_dir"] = "/elsewhere"
  del stored["model"]["conv_kernel_grad"]
  (run / "config.json").write_text(json.dumps(stored))
  assert ablation.run_once(
    ablation.variant_config(base, ablation.STUDIES["baseline"][0], 0, ablations.apply), run, _never_train
  ) == {"top1": 0.5, "wall_s": 1.0}


def test_unknown_study_is_named(tmp_path):
  with pytest.raises(ValueError, match="'lossy'"):
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

  tables = ablation.run_study(config, ["affinity"], [0], root, ablations.apply)
  report = ablation.write_report(
    tables, root, root / "report", "python tools/ablate.py ...", [0], ablation.run_key(config)
  )

  keys = ["smfl-residual-m1_0", "smfl-residual-m1_1"]
  assert [r.key for r in tables["affinity"]] == keys
  for row, key in zip(tables["affinity"], keys, strict=True):
    records = [json.loads(line) for line in (root / "runs" / key / "seed_0" / "metrics.jsonl").read_text().splitlines()]
    last_eval = [r for r in records if r["split"] == "eval"][-1]
    assert last_eval["step"] == 2
    assert row.top1_by_seed == {0: last_eval["concat_top1"]}
  text = report.read_text()
  assert "local only (M1 = 0)" in text and "`smfl-residual-m1_1`" in text
  stored = json.loads((root / "report" / "results.json").read_text())
  assert stored["seeds"] == [0] and stored["learning_curve"] == {"key": "smfl-residual-m1_1", "seed": 0}
  assert [r["top1_by_seed"] for r in stored["studies"]["affinity"]] == [
    {"0": r.top1_by_seed[0]} for r in tables["affinity"]
  ]
  for name in ("affinity.png", "learning_curve.png"):
    assert (root / "report" / name).read_bytes()[:8] == PNG_MAGIC

  # Finished runs are reused as they are; an unfinished one is an error that says how to resume.
  again = ablation.run_study(config, ["affinity"], [0], root, ablations.apply, _never_train)
  assert again == tables
  with pytest.raises(RuntimeError, match="before its final step 2"):
    ablation.run_study(config, ["affinity"], [5], root, ablations.apply, lambda config, workdir: None)
  assert not (root / "runs" / keys[0] / "seed_5" / "result.json").exists()


def _report(command, studies, curve_key):
  return {
    "command": command,
    "seeds": [0, 1],
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
        "python tools/ablate.py A", {"baseline": [("B1", "k0", 0.8, 0.84, 10), ("full", "k1", 0.86, 0.88, 20)]}, "k1"
      )
    )
  )
  loss = [("CE", "c", 0.9, 0.9, 5), ("SMFL", "k1", 0.86, 0.88, 20)]
  (tables / "results.json").write_text(json.dumps(_report("python tools/ablate.py B", {"loss": loss}, "k1")))
  page = ablation.write_page(
    "# Results\n\nintro text\n", [("At the preset", target), ("Table 3", tables)], tmp_path / "page.md", 0.85
  ).read_text()

  lines = page.splitlines()
  assert lines[:2] == ["# Results", ""] and "intro text" in lines
  summary = lines[lines.index("## Summary") + 2 : lines.index("## At the preset") - 1]
  assert summary == [
    "- **At the preset**",
    "  - Full model vs Baseline1: full: 87.00 ± 1.41 % top-1 over 2 seeds; the target of 85.00 % is met, 2.00 points "
    "above. The paper's choice, full, has the highest mean top-1 (87.00 %), as in the paper. The largest sample std "
    "over seeds is 2.83 points.",
    "- **Table 3**",
    "  - Table 3: loss function: The paper's choice, SMFL, ranks 2 of 2 by mean top-1 (87.00 %); CE is highest "
    "(90.00 %, 3.00 points more), where the paper ranks its choice first. The largest sample std over seeds is 1.41 "
    "points.",
  ]
  assert "Command: `python tools/ablate.py B`" in lines
  assert "| CE | `c` | 90.00 ± 0.00 | 90.00 | 90.00 | 5 |" in lines
  # Images are linked relative to the page; report headings sit one level below the section's.
  assert "![loss](results/tables/loss.png)" in lines and "![learning curve](results/target/learning_curve.png)" in lines
  assert "### Table 3: loss function" in lines


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

  missing = subprocess.run([*command, f"--section=B={tmp_path}"], capture_output=True, text=True, check=False)
  assert missing.returncode != 0 and f"{tmp_path / 'results.json'} does not exist" in missing.stderr
