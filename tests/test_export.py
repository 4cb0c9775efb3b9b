"""tools/export.py: the exported program against the in-process Predictor, and run by a process with jax alone."""

import json
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from test_inference import CLASS_NAMES, tiny_config, write_workdir

from slnl_jax import sharding, steps
from slnl_jax.data import readers
from slnl_jax.inference import Predictor

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()

# What a user writes to run the file: jax and numpy, no flax, TensorFlow or project code.
LOADER = """
import json, pathlib, sys
import jax, numpy as np
path = pathlib.Path(sys.argv[1])
exported = jax.export.deserialize(path.read_bytes())
names = json.loads(path.with_suffix(".json").read_text())["class_names"]
clip = np.load(sys.argv[2])  # (T, M, V, C) raw frames
probabilities = np.asarray(exported.call(clip[None], np.array([len(clip)], np.int32)))[0]
loaded = sorted({"flax", "slnl_jax", "tensorflow", "orbax"} & {m.split(".")[0] for m in sys.modules})
print(json.dumps({"top": names[int(probabilities.argmax())], "p": probabilities.tolist(), "loaded": loaded}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  root = tmp_path_factory.mktemp("export")
  write_workdir(root / "workdir", tiny_config())
  out = root / "model.jaxexport"
  result = subprocess.run(
    [sys.executable, "tools/export.py", f"--workdir={root / 'workdir'}", f"--out={out}"],
    cwd=REPO,
    capture_output=True,
    text=True,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  assert str(out) in result.stdout
  return Predictor.from_workdir(root / "workdir"), out


def test_exported_program_equals_the_in_process_model_on_cpu(exported):
  predictor, path = exported
  program = jax.export.deserialize(path.read_bytes())
  assert program.platforms == ("cpu", "cuda", "tpu")
  assert json.loads(path.with_suffix(".json").read_text())["class_names"] == CLASS_NAMES
  rng = np.random.default_rng(0)
  # Batch, frames and persons are symbolic: one file, several shapes.
  for batch, frames, persons in ((1, 17, 1), (3, 40, 3)):
    skeleton = rng.normal(size=(batch, frames, persons, 25, 3)).astype(np.float32)
    num_frames = rng.integers(1, frames + 1, batch).astype(np.int32)
    expected = predictor.probabilities(skeleton, num_frames)
    np.testing.assert_allclose(np.asarray(program.call(skeleton, num_frames)), expected, rtol=1e-6, atol=1e-7)


def test_a_process_with_jax_alone_runs_the_file(exported, tmp_path):
  predictor, path = exported
  clip = np.random.default_rng(1).normal(size=(30, 2, 25, 3)).astype(np.float32)
  np.save(tmp_path / "clip.npy", clip)
  result = subprocess.run(
    [sys.executable, "-c", LOADER, str(path), str(tmp_path / "clip.npy")],
    cwd=tmp_path,
    capture_output=True,
    text=True,
    check=False,
  )
  assert result.returncode == 0, result.stderr[-3000:]
  out = json.loads(result.stdout.strip().splitlines()[-1])
  assert out["loaded"] == []
  [[(name, probability)]] = predictor.predict([clip], top_k=1)
  assert out["top"] == name
  np.testing.assert_allclose(max(out["p"]), probability, rtol=1e-6)


def test_the_readme_example_classifies_a_raw_file_and_a_stream(exported, tmp_path, shared_data):
  predictor, path = exported
  code = re.search(r"<!-- readme-example: exported -->\n```python\n(.*?)```", README, re.DOTALL)
  assert code, "README has no example marked 'exported'"
  name = "S001C001P001R001A001.skeleton"
  shutil.copy(shared_data / "ntu_rgbd" / "nturgb+d_skeletons" / name, tmp_path / name)
  shutil.copy(path, tmp_path / "model.jaxexport")
  shutil.copy(path.with_suffix(".json"), tmp_path / "model.json")
  # The project's readers are plain numpy: the example's process never imports the training stack.
  stack = "{'flax', 'optax', 'orbax', 'tensorflow'}"
  no_stack = f"\nimport sys\nassert not {stack} & {{m.split('.')[0] for m in sys.modules}}"
  result = subprocess.run(
    [sys.executable, "-c", code.group(1) + no_stack], cwd=tmp_path, capture_output=True, text=True, check=False
  )
  assert result.returncode == 0, result.stderr[-3000:]
  clip = readers.read_file(tmp_path / name).skeleton
  [[(top, probability)]] = predictor.predict([clip], top_k=1)
  lines = result.stdout.splitlines()
  assert lines[0].split()[:2] == ["clip:", top]
  np.testing.assert_allclose(float(lines[0].split()[2]), probability, rtol=1e-5)
  expected = [f"frames {w.start}-{w.end - 1}: {w.top[0][0]}" for w in predictor.stream(clip, window=32, stride=16)]
  assert [line.rsplit(" ", 1)[0] for line in lines[1:]] == expected


def test_an_exported_model_averages_the_same_evaluation_views(tmp_path):
  """2 crops x 3 turns: the exported program (batch symbolic) against the in-process Predictor."""
  config = tiny_config(center_channels=3)
  config.dataset.update(eval_clips=2, eval_turns=3, train_rotation_deg=60.0)
  state = steps.initial_state(config, steps.create_learning_rate_fn(config, 1), sharding.make_mesh())
  predictor = Predictor(config, {"params": state.params, "batch_stats": state.batch_stats}, CLASS_NAMES)
  program = predictor.export(tmp_path / "views.jaxexport", platforms=("cpu",))
  rng = np.random.default_rng(1)
  for batch, frames in ((1, 9), (3, 20)):
    skeleton = rng.normal(size=(batch, frames, 1, 25, 3)).astype(np.float32)
    num_frames = rng.integers(1, frames + 1, batch).astype(np.int32)
    expected = predictor.probabilities(skeleton, num_frames)
    np.testing.assert_allclose(np.asarray(program.call(skeleton, num_frames)), expected, rtol=1e-5, atol=1e-6)
