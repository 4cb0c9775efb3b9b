"""The command line end to end (subprocesses): train, eval and predict on a tiny demo config, the workdir's
files, a mistyped config key, and SIGTERM leaving a checkpoint that the next start resumes from."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from slnl_jax import main
from slnl_jax.data import synthetic

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# NTU-60 cross-subject training performers (Shahroudy et al. 2016), which the synthetic set reuses.
XSUB_TRAIN = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
  root = tmp_path_factory.mktemp("raw")
  synthetic.write_dataset(root, num_clips=32, seed=3, min_frames=10, max_frames=20)
  return root


def command(workdir, raw_dir, *extra):
  return [
    sys.executable,
    "-m",
    "slnl_jax.main",
    "--config=configs/demo.py",
    f"--workdir={workdir}",
    f"--jax_cache_dir={REPO_ROOT / '.jax_cache'}",
    f"--config.dataset.manual_dir={raw_dir}",
    f"--config.dataset.data_dir={raw_dir.parent / 'tfds'}",
    "--config.dataset.num_frames=8",
    "--config.model.num_joints_out=8",
    "--config.model.num_systems=2",
    "--config.model.channels=(8, 8)",
    "--config.model.kernel_sizes=(3, 3)",
    "--config.model.num_slnl_blocks=1",
    "--config.train.batch_size=4",
    "--config.train.eval_batch_size=4",
    "--config.train.steps_per_epoch=2",
    *extra,
  ]


def run(args, **kwargs):
  result = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, **kwargs)
  assert result.returncode == 0, result.stderr[-5000:]
  return result


def records(workdir):
  return [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]


def test_train_eval_predict(raw_dir, tmp_path):
  workdir = tmp_path / "run"
  result = run(command(workdir, raw_dir, "--config.train.num_epochs=1"))
  num_test = sum(int(re.search(r"P(\d{3})", p.name)[1]) not in XSUB_TRAIN for p in raw_dir.glob("*.skeleton"))
  assert f"final eval on {num_test} examples: top-1" in result.stdout

  assert (workdir / "checkpoints" / "2").is_dir()
  assert json.loads((workdir / "config.json").read_text())["train"]["batch_size"] == 4
  assert list(workdir.glob("events.out.tfevents.*"))
  train_records, eval_records = [[r for r in records(workdir) if r["split"] == s] for s in ("train", "eval")]
  assert [r["step"] for r in train_records] == [2]
  assert [(r["step"], r["epoch"]) for r in eval_records] == [(2, 0)]
  for key in ("loss", "top1", "top5", "position_top1", "velocity_top1", "concat_top1"):
    assert 0 <= eval_records[0][key] < float("inf"), key
  confusion = np.load(workdir / "eval" / "confusion_matrix.npy")
  assert confusion.shape == (8, 8)
  assert confusion.sum() == num_test
  assert np.trace(confusion) / num_test == pytest.approx(eval_records[0]["top1"])
  assert np.load(workdir / "eval" / "per_class_accuracy.npy").shape == (8,)
  assert (workdir / "eval" / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")

  trainers = {path.name: path.stat().st_mtime_ns for path in (workdir / "eval").iterdir()}
  result = run(command(workdir, raw_dir, "--mode=eval", "--checkpoint=latest"))
  assert f"eval on {num_test} examples: top-1 {100 * eval_records[0]['top1']:.2f}%" in result.stdout
  # Logged and written apart from the trainer's evaluations, which the learning curve and its files keep.
  assert [r["split"] for r in records(workdir)][-2:] == ["eval", "checkpoint_eval"]
  assert np.load(workdir / "checkpoint_eval" / "confusion_matrix.npy").sum() == num_test
  assert {path.name: path.stat().st_mtime_ns for path in (workdir / "eval").iterdir()} == trainers

  clip = sorted(raw_dir.glob("*.skeleton"))[0]
  result = run(command(workdir, raw_dir, "--mode=predict", f"--input={clip}"))
  lines = [line.split() for line in result.stdout.splitlines() if re.match(r"\s+\d\. ", line)]
  assert len(lines) == 5
  names = [" ".join(line[1:-1]) for line in lines]
  probabilities = [float(line[-1]) for line in lines]
  assert set(names) <= set(synthetic.CLASSES) and len(set(names)) == 5
  assert probabilities == sorted(probabilities, reverse=True)
  assert 0 < sum(probabilities) <= 1 + 1e-3


def test_unknown_config_key_is_named(raw_dir, tmp_path):
  result = subprocess.run(
    command(tmp_path, raw_dir, "--config.train.batchsize=3"), cwd=REPO_ROOT, capture_output=True, text=True
  )
  assert result.returncode != 0
  assert "--config.train.batchsize: unknown config key 'batchsize'" in result.stderr
  assert 'Did you mean "batch_size"' in result.stderr


def test_sigterm_saves_and_the_next_start_resumes(raw_dir, tmp_path):
  workdir = tmp_path / "run"
  args = command(
    workdir,
    raw_dir,
    "--config.train.num_epochs=1000",
    "--config.train.eval_every_epochs=1000",
    "--config.train.log_every_steps=1",
  )
  process = subprocess.Popen(args, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  try:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
      if (workdir / "metrics.jsonl").exists() and len(records(workdir)) >= 3:
        break
      time.sleep(0.2)
    assert process.poll() is None, process.communicate()[1][-5000:]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=300)
  finally:
    if process.poll() is None:
      process.kill()
  assert process.returncode == main.PREEMPTED_EXIT_CODE == 75, stderr[-5000:]  # schedulers requeue on it
  saved = int(re.search(r"preempted: saved step (\d+)", stderr)[1])
  assert saved >= 3
  assert (workdir / "checkpoints" / str(saved)).is_dir()

  result = run([*args, f"--config.train.max_steps={saved + 1}"])
  assert f"resumed from {workdir / 'checkpoints' / str(saved)}" in result.stderr
  assert [r["step"] for r in records(workdir) if r["split"] == "train"] == list(range(1, saved + 2))
  assert (workdir / "checkpoints" / str(saved + 1)).is_dir()


def _one_error_line(result) -> str:
  assert result.returncode != 0
  assert "Traceback" not in result.stderr, result.stderr[-3000:]
  errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
  assert len(errors) == 1, result.stderr[-3000:]
  return errors[0]


@pytest.mark.parametrize(
  ("override", "expected"),
  [
    ("--config.train.batch_size=-4", "error: config.train.batch_size=-4: must be an integer >= 1"),
    ("--config.dataset.num_frames=0", "error: config.dataset.num_frames=0: must be an integer >= 1"),
  ],
)
def test_bad_numbers_stop_at_start_up(raw_dir, tmp_path, override, expected):
  result = subprocess.run(command(tmp_path, raw_dir, override), cwd=REPO_ROOT, capture_output=True, text=True)
  assert _one_error_line(result).startswith(expected)
  assert not (tmp_path / "config.json").exists() and not (tmp_path / "checkpoints").exists()  # before any work


def test_a_config_file_error_keeps_its_message(tmp_path):
  result = subprocess.run(
    [sys.executable, "-m", "slnl_jax.main", "--config=configs/ablations.py:no_such_base", f"--workdir={tmp_path}"],
    cwd=REPO_ROOT,
    capture_output=True,
    text=True,
  )
  line = _one_error_line(result)
  assert line.startswith("error: --config=configs/ablations.py:no_such_base: ") and "no_such_base" in line[60:]


def test_an_unwritable_workdir_stops_before_any_work(raw_dir, tmp_path):
  (tmp_path / "a_file").write_text("")  # a workdir under a file: unwritable even for root
  result = subprocess.run(
    command(tmp_path / "a_file" / "run", raw_dir), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
  )
  assert _one_error_line(result).startswith(f"error: cannot write to {tmp_path / 'a_file' / 'run'}: ")


def test_a_batch_the_devices_cannot_split_stops_at_start_up(raw_dir, tmp_path):
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
  result = subprocess.run(
    command(tmp_path, raw_dir, "--config.train.batch_size=3"), cwd=REPO_ROOT, capture_output=True, text=True, env=env
  )
  assert _one_error_line(result) == (
    "error: config.train.batch_size=3 must be a multiple of the number of devices (2 over 1 process(es))"
  )


def test_a_bad_checkpoint_flag_is_one_line(raw_dir, tmp_path):
  result = subprocess.run(
    command(tmp_path, raw_dir, "--mode=eval", "--checkpoint=abc"), cwd=REPO_ROOT, capture_output=True, text=True
  )
  assert _one_error_line(result) == "error: flag --checkpoint=abc: must be 'best', 'latest' or a number"


@pytest.mark.parametrize(
  ("override", "expected"),
  [
    ("--config.dataset.name=nw_ucla/view_3", "error: 'nw_ucla/view_3': unknown config 'view_3' of nw_ucla; expected"),
    ("--config.dataset.name=msr_action3d/cross_subject", "error: msr_action3d/cross_subject is not built in "),
    ("--config.dataset.num_classes=7", "error: dataset 'synthetic_skeleton/xsub' has 8 classes but config.dataset"),
  ],
)
def test_data_the_config_cannot_reach_is_one_line(raw_dir, tmp_path, override, expected):
  """A mistyped dataset, no data where the config points, or another class count: one line, before training."""
  data = [f"--config.dataset.data_dir={tmp_path / 'tfds'}", f"--config.dataset.manual_dir={tmp_path / 'no_raw'}"]
  args = command(tmp_path, raw_dir, *data, override)
  result = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
  assert _one_error_line(result).startswith(expected)
