r"""Builds one TFDS dataset from raw files (see slnl_jax/data/builders.py for each layout).

  python tools/build_dataset.py ntu_rgbd60/xsub --manual_dir=~/raw/ntu --data_dir=~/tensorflow_datasets
  python tools/build_dataset.py synthetic_skeleton --data_dir=/tmp/tfds --num_clips=480 --seed=0

Prints the split sizes, the skip/exclusion counts and the path of the build report. TFDS shows a
progress bar per split. Malformed files are skipped and reported unless --noskip_bad. A mistake (an unknown
name, missing or malformed files, a build from other files in --data_dir) stops with one `error:` line.
"""

from __future__ import annotations

import json
import sys

from absl import app, flags, logging

from slnl_jax.data import builders

_MANUAL_DIR = flags.DEFINE_string("manual_dir", "", "The unpacked raw files (synthetic: may be empty).")
_DATA_DIR = flags.DEFINE_string("data_dir", "~/tensorflow_datasets", "Where TFDS datasets are written.")
_SKIP_BAD = flags.DEFINE_boolean("skip_bad", True, "Skip and report malformed files instead of stopping.")
_NUM_CLIPS = flags.DEFINE_integer(
  "num_clips", builders.DEFAULT_SYNTHETIC_CLIPS, "synthetic_skeleton: clips to generate."
)
_SEED = flags.DEFINE_integer("seed", 0, "synthetic_skeleton: generator seed.")


def main(argv: list[str]) -> None:
  if len(argv) != 2:
    raise app.UsageError(f"usage: build_dataset.py NAME [flags]; NAME in {sorted(builders.BUILDERS)}")
  name = argv[1]
  logging.set_verbosity(logging.WARNING)  # TFDS's per-step INFO lines; its progress bars stay
  try:
    builder = builders.build(
      name,
      manual_dir=_MANUAL_DIR.value or None,
      data_dir=_DATA_DIR.value,
      skip_bad=_SKIP_BAD.value,
      num_clips=_NUM_CLIPS.value,
      seed=_SEED.value,
    )
  # The builders' errors name the file or folder and say what is wrong (SkeletonFormatError and
  # StaleBuildError are ValueErrors); a traceback would only bury the message.
  except (ValueError, OSError) as e:
    sys.exit(f"error: {name}: {e}")
  info = builders.load_info(name, _DATA_DIR.value)
  report = json.loads(info["report"].read_text())
  print(
    f"{builder.info.full_name}: {info['num_classes']} classes, skeleton (T, {info['num_persons']}, "
    f"{info['num_joints']}, {info['num_channels']})"
  )
  for split, count in info["num_examples"].items():
    print(f"  {split}: {count} examples")
  print(
    f"  {report['seen']} {report['unit']}s seen = {report['written']} written + {report['num_skipped']} skipped"
    f" + {report['num_excluded']} excluded"
  )
  copies = report.get("test_copies_of_training", [])  # absent from the reports of builds made before it
  if copies:
    print(
      f"  {len(copies)} test examples have the same frames as a training example (e.g. {copies[0][0]} = "
      f"{copies[0][1]}): test scores count them; the report lists them all"
    )
  for entry in report["skipped"][:10]:
    print(f"  skipped {entry['file']}: {entry['reason']}", file=sys.stderr)
  print(f"  report: {info['report']}")


if __name__ == "__main__":
  app.run(main)
