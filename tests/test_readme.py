"""The README's promises: its code example runs, and its two commands are the Makefile's and CI's."""

import re
import subprocess
import sys

from conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def _example(name: str) -> str:
  match = re.search(rf"<!-- readme-example: {name} -->\n```python\n(.*?)```", README, re.DOTALL)
  assert match, f"README has no example marked {name!r}"
  return match.group(1)


def test_smfl_example_runs_and_prints_both_losses():
  result = subprocess.run([sys.executable, "-c", _example("smfl")], capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr
  smfl_value, ce_value = map(float, re.fullmatch(r"SMFL (\S+); CE (\S+)\n", result.stdout).groups())
  # The focal weight (1 - p_t)^2 < 1 shrinks the CE term; the margin term adds at most m = 0.4 per example.
  assert 0 < smfl_value < ce_value + 0.4


def test_two_commands_exist_and_ci_runs_the_test_command():
  makefile = (REPO_ROOT / "Makefile").read_text()
  for target in ("demo", "test"):
    assert f"make {target}" in README
    assert re.search(rf"^{target}:", makefile, re.MULTILINE), target
  assert re.search(r"^make test$", (REPO_ROOT / ".ci" / "run").read_text(), re.MULTILINE)
