r"""Writes docs/results.md from an intro and the report folders of tools/ablate.py (`make results` runs it all).

  python tools/results_page.py --intro=docs/results_intro.md --out=docs/results.md \
      --section="N-UCLA: the chain=docs/results/nw_ucla_chain" --target_top1="N-UCLA: the chain=92" \
      --section="Tables 3-5=docs/results/tables_seed3"

Each --section is TITLE=REPORT_DIR; the page is the intro, a summary (each report's number of seeds, where the
paper's choice ranks in each table; whether the full model reaches a section's --target_top1) and one section
per report, every number read from the reports' results.json.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from absl import app, flags

from slnl_jax import ablation

_INTRO = flags.DEFINE_string("intro", None, "Markdown file that opens the page (title, setup, protocol).")
_OUT = flags.DEFINE_string("out", None, "The page to write, e.g. docs/results.md.")
_SECTIONS = flags.DEFINE_multi_string("section", [], "TITLE=REPORT_DIR, one per report, in page order.")
_TARGETS = flags.DEFINE_multi_string(
  "target_top1", [], "TITLE=PERCENT: the target mean top-1 (%) of that section's full model, checked in the summary."
)
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


def parse_targets(values: Sequence[str], sections: Sequence[tuple[str, pathlib.Path]]) -> dict[str, float]:
  """['TITLE=PERCENT', ...] -> {TITLE: fraction}; each TITLE must be a --section's."""
  titles = {title for title, _ in sections}
  targets = {}
  for value in values:
    title, _, percent = value.rpartition("=")
    try:
      targets[title] = float(percent) / 100
    except ValueError:
      raise app.UsageError(f"--target_top1 must be TITLE=PERCENT, got {value!r}") from None
    if title not in titles:
      raise app.UsageError(f"--target_top1 {value!r}: no --section is titled {title!r}")
  return targets


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  sections = [parse_section(value) for value in _SECTIONS.value]
  out = ablation.write_page(
    pathlib.Path(_INTRO.value).read_text(), sections, pathlib.Path(_OUT.value), parse_targets(_TARGETS.value, sections)
  )
  print(f"wrote {out}")


if __name__ == "__main__":
  app.run(main)
