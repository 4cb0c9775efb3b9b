"""notebooks/slnl_rfa_colab.ipynb runs top to bottom (nbclient, this venv's kernel) in a small setting.

The setting (1 epoch of 2 steps on the synthetic demo set) is injected papermill-style: a cell after the one
tagged `parameters` overrides NUM_EPOCHS, STEPS_PER_EPOCH and WORKDIR. A last probe cell reports the arrays
behind the pictures, which are checked against properties that hold whatever the weights (softmax rows sum to 1,
sigmoid masks lie in (0, 1)) and against counts made here from the demo files' names.
"""

import json
import os
import pathlib
import re
import sys

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient
from PIL import Image

from configs import demo

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "slnl_rfa_colab.ipynb"
KERNEL_NAME = "slnl-jax-test"
EPOCHS, STEPS_PER_EPOCH = 1, 2
PICTURES = (
  "frequency_masks.png",
  "nonlocal_affinity.png",
  "skeleton_attention.gif",
  "confusion_matrix.png",
  "learning_curves.png",
)
# NTU RGB+D 60 cross-subject protocol: the training performers (Shahroudy et al., CVPR 2016, Sec. 3.2).
XSUB_TRAIN_PERFORMERS = {1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38}
PROBE = r"""
import json, sys
print("PROBE " + json.dumps({
  "executable": sys.executable,
  "num_test": num_test,
  "masks": {k: masks_plot.data[k].tolist() for k in ("cos", "sin")},
  "affinity": affinity_plot.data["affinity"].tolist(),
  "query": affinity_plot.data["query"].tolist(),
  "weights": skeleton_plot.data["weights"].tolist(),
  "per_class_accuracy": [None if a != a else a for a in confusion_plot.data["accuracy"].tolist()],
  "curves": {k: v.tolist() for k, v in curves_plot.data.items()},
}))
"""


def _parameters_index(nb: nbformat.NotebookNode) -> int:
  tagged = [i for i, cell in enumerate(nb.cells) if "parameters" in cell.metadata.get("tags", [])]
  assert len(tagged) == 1, f"expected one cell tagged 'parameters', found {len(tagged)}"
  return tagged[0]


def _stdout(cell: nbformat.NotebookNode) -> str:
  return "".join(out.text for out in cell.get("outputs", []) if out.output_type == "stream" and out.name == "stdout")


def _cell(nb: nbformat.NotebookNode, cell_id: str) -> nbformat.NotebookNode:
  return next(cell for cell in nb.cells if cell.get("id") == cell_id)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
  """Executes the notebook once; returns (executed notebook, workdir, probe dict)."""
  tmp = tmp_path_factory.mktemp("notebook")
  workdir = tmp / "workdir"
  nb = nbformat.read(NOTEBOOK, as_version=4)
  overrides = f"NUM_EPOCHS = {EPOCHS}\nSTEPS_PER_EPOCH = {STEPS_PER_EPOCH}\nWORKDIR = {str(workdir)!r}"
  injected = nbformat.v4.new_code_cell(overrides, metadata={"tags": ["injected-parameters"]})
  nb.cells.insert(_parameters_index(nb) + 1, injected)
  nb.cells.append(nbformat.v4.new_code_cell(PROBE))

  # A kernel spec of our own naming this interpreter, so that no other "python3" kernel on the machine is used.
  spec_dir = tmp / "jupyter" / "kernels" / KERNEL_NAME
  spec_dir.mkdir(parents=True)
  argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
  (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": KERNEL_NAME, "language": "python"}))
  with pytest.MonkeyPatch.context() as mp:
    mp.setenv("JUPYTER_PATH", str(tmp / "jupyter"))
    # The kernel shares the test suite's persistent XLA cache (tests/conftest.py).
    mp.setenv("JAX_COMPILATION_CACHE_DIR", str(REPO_ROOT / ".jax_cache"))
    mp.setenv("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
    client = NotebookClient(nb, kernel_name=KERNEL_NAME, timeout=600, resources={"metadata": {"path": str(tmp)}})
    client.execute()
  probe = _stdout(nb.cells[-1])
  assert probe.startswith("PROBE "), probe
  return nb, workdir, json.loads(probe.removeprefix("PROBE "))


def test_committed_notebook_has_no_outputs_and_one_parameters_cell():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  code = [cell for cell in nb.cells if cell.cell_type == "code"]
  assert code
  assert all(cell.outputs == [] and cell.execution_count is None for cell in code)
  parameters = nb.cells[_parameters_index(nb)].source
  for name in ("DATA", "CONFIG", "NUM_EPOCHS", "STEPS_PER_EPOCH", "WORKDIR"):
    assert re.search(rf"^{name} = ", parameters, re.MULTILINE), name


def _demo_test_split(workdir: pathlib.Path) -> list[str]:
  """Names of the generated demo files in the test split, by the cross-subject rule on their performer (Pppp)."""
  names = [path.name for path in (workdir / "tfds").rglob("*.skeleton")]
  assert names, f"no demo .skeleton files under {workdir / 'tfds'}"
  return [name for name in names if int(re.search(r"P(\d{3})", name)[1]) not in XSUB_TRAIN_PERFORMERS]


@pytest.mark.slow
def test_kernel_is_this_interpreter_and_devices_are_printed(run):
  nb, _, probe = run
  assert os.path.abspath(probe["executable"]) == os.path.abspath(sys.executable)
  text = _stdout(_cell(nb, "devices"))
  match = re.search(r"backend '(cpu|gpu|tpu)', (\d+) device\(s\):\n(.*)\n", text)
  assert match, text
  assert int(match[2]) == match[3].count("(id=") >= 1


@pytest.mark.slow
def test_evaluation_accuracy_and_confusion_matrix(run):
  nb, workdir, probe = run
  test_split = _demo_test_split(workdir)
  num_test = len(test_split)
  text = _stdout(_cell(nb, "evaluate"))
  assert re.search(rf"^{num_test} test clips$", text, re.MULTILINE), text
  top1 = float(re.search(r"top-1 accuracy \(concat head, the model's prediction\): ([0-9.]+)$", text, re.MULTILINE)[1])
  assert 0.0 <= top1 <= 1.0

  confusion = np.load(workdir / "eval" / "confusion_matrix.npy")
  num_classes = demo.get_config().dataset.num_classes
  assert confusion.shape == (num_classes, num_classes)
  assert np.issubdtype(confusion.dtype, np.integer) and confusion.min() >= 0
  assert confusion.sum() == num_test == probe["num_test"]
  assert np.trace(confusion) / num_test == pytest.approx(top1, abs=5e-5)  # printed with 4 decimals
  # Rows are true classes: each row holds that class's test clips, counted here from the action ids (Aaaa).
  for k in range(num_classes):
    assert confusion[k].sum() == sum(int(re.search(r"A(\d{3})", name)[1]) == k + 1 for name in test_split)
  expected = [None if row.sum() == 0 else row[k] / row.sum() for k, row in enumerate(confusion)]
  assert probe["per_class_accuracy"] == pytest.approx(expected)


@pytest.mark.slow
def test_training_followed_the_injected_setting(run):
  _, workdir, probe = run
  steps = EPOCHS * STEPS_PER_EPOCH
  assert sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == [steps]
  records = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
  train = [r for r in records if r["split"] == "train"]
  assert [r["step"] for r in train] == [steps] and all(np.isfinite(r["loss"]) for r in train)
  # The trainer's end-of-training evaluation and the notebook's evaluation of the restored best checkpoint
  # (the same, only, checkpoint; logged as a checkpoint evaluation) agree.
  evals = [r for r in records if r["split"] == "eval"]
  (checkpoint_eval,) = [r for r in records if r["split"] == "checkpoint_eval"]
  assert [r["step"] for r in evals] == [steps] and checkpoint_eval["step"] == steps
  assert evals[0]["concat_top1"] == pytest.approx(checkpoint_eval["concat_top1"])
  assert probe["curves"]["train_epoch"] == [0] and probe["curves"]["eval_epoch"] == [0]
  assert probe["curves"]["eval_top1"] == pytest.approx([evals[0]["concat_top1"]])


@pytest.mark.slow
def test_pictures_are_written_and_show_valid_attention(run):
  _, workdir, probe = run
  config = demo.get_config()
  num_frames, num_joints_out = config.dataset.num_frames, config.model.num_joints_out
  for name in PICTURES:
    with Image.open(workdir / "pictures" / name) as image:
      assert len(image.convert("RGB").getcolors(maxcolors=1 << 24)) > 10, f"{name} is (nearly) blank"
      if name.endswith(".gif"):
        assert image.n_frames == num_frames  # one GIF frame per model input frame

  # rFA masks: sigmoid outputs over (temporal, joint) frequency of the transformed skeleton (Sec. 3.2).
  for key in ("cos", "sin"):
    mask = np.array(probe["masks"][key])
    assert mask.shape == (num_frames, num_joints_out)
    assert 0.0 <= mask.min() and mask.max() <= 1.0
  # One query's row of a softmax affinity over the (T, N') positions of block 0 (Eq. 6): a distribution.
  affinity = np.array(probe["affinity"])
  assert affinity.shape == (num_frames, num_joints_out)
  assert affinity.min() >= 0.0 and affinity.sum() == pytest.approx(1.0, abs=1e-4)
  assert probe["query"] == [num_frames // 2, num_joints_out // 2]
  # Saliency colours: (T, M, V), scaled so that the largest is 1.
  weights = np.array(probe["weights"])
  persons, joints = config.dataset.num_persons, config.dataset.num_joints
  assert weights.shape == (num_frames, persons, joints)
  assert weights.min() >= 0.0 and weights.max() == pytest.approx(1.0)
