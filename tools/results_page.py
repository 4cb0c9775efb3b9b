r"""Writes docs/results.md from an intro and the report folders of tools/ablate.py (`make results` runs it all).

  python tools/results_page.py --intro=docs/results_intro.md --out=docs/results.md --target_top1=85 \
      --section="Full model vs Baseline1=docs/results/target" --section="Tables 3-5=docs/results/tables_seed3"

Each --section is TITLE=REPORT_DIR; the page is the intro, a summary (where the paper's choice ranks in each
table; whether the full model reaches --target_top1) and one section per report, every number read from the
reports' results.json.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from absl import app, flags

from slnl_jax import ablation

_INTRO = flags.DEFINE_string("intro", None, "Markdown file that opens the page (title, setup, protocol).")
_OUT = flags.DEFINE_string("out", None, "The page to write, e.g. docs/results.md.")
_SECTIONS = flags.DEFINE_multi_string("section", [], "TITLE=REPORT_DIR, one per report, in page order.")
_TARGET = flags.DEFINE_float("target_top1", None, "Target mean top-1 (%) of the full model, checked in the summary.")
flags.mark_flags_as_required(["intro", "out", "section"])


def parse_section(value: str) -> tuple[str, pathlib.Path]:
  """'TITLE=DIR' -> (TITLE, DIR); DIR must hold a results.json written by tools/ablate.py."""
  title, sep, folder = value.rpartition("=")
  if not sep or not title:
    raise app.UsageError(f"--section must be TITLE=REPORT_DIR, got {value!r}")
  path = pathlib.Path(folder)
  if not (path / "results.json").is_file():
    raise app.UsageError(f"--section {value!r}: {path / 'results.json'} does not exist (run tools/ablate.py first)")
  return title, path


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  sections = [parse_section(value) for value in _SECTIONS.value]
  target = None if _TARGET.value is None else _TARGET.value / 100
  out = ablation.write_page(pathlib.Path(_INTRO.value).read_text(), sections, pathlib.Path(_OUT.value), target)
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
