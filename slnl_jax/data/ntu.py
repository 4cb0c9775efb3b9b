"""NTU RGB+D 60 / 120 raw `.skeleton` files (Kinect v2, 25 joints) -> `Clip`.

File format (one value group per line, CRLF or LF):

  T                                   number of frames
  per frame:  B                       number of bodies in the frame (0, 1, 2, ...)
    per body: 10 numbers              bodyID clipedEdges handLeftConfidence handLeftState
                                      handRightConfidence handRightState isRestricted leanX leanY
                                      trackingState
              25                      number of joints
              25 lines x 12 numbers   x y z depthX depthY colorX colorY orientW..Z trackingState

Only the camera-space `x y z` (metres) are kept, so a clip is (T, M, V=25, C=3).

Body selection (the denoising of SGN's and CTR-GCN's `get_raw_denoised_data`): bodies are tracked
by their Kinect body id across frames. When a file has several bodies,
  1. "length": bodies present in at most 11 frames are discarded (tracker flicker);
  2. "spread": bodies wider than tall (x spread > 0.8 x y spread) in at least 69.754% of their
     frames are discarded (furniture or other objects fitted with a skeleton);
  3. "joined": the rest, ranked by motion energy (the sum over joints and axes of the temporal
     variance of the joint position), fill the `max_bodies` persons in that order: a body whose
     frame interval (first..last) overlaps none of a person's bodies joins that person (the
     tracker gave one actor a new id mid-clip), else it starts the next person;
  4. "extra": bodies left over when every person is taken (and overlaps them) are discarded.
A step never discards every body. Persons a clip has fewer of are zeros; `meta["body_rules"]` counts
the bodies each rule discarded or joined. In `S001C001P001R001A024` (a one-person action) the Kinect
also fits a body to an object about 2 m to the side in every frame; rule 2 discards it, so the real
actor is person 1 and person 2 is zeros.

Where we differ from that code, and why: it drops a body after motion thresholds only in a step it
leaves commented out (and so do we; the ranking of rule 3 keeps the most active bodies), and it calls
two intervals that share one frame non-overlapping (the later body then overwrites that frame); we
join only bodies that share no frame.

Frames where none of the kept bodies is present (including frames with B = 0) are dropped and
counted in `meta["dropped_frames"]`.

Bad input raises `SkeletonFormatError` with the file, 1-based line and what was expected: a
truncated file, a line with the wrong number of fields, a count, body id or x y z that is not a
number, a joint count other than 25, a body id repeated within a frame, NaN/Inf (or beyond
float32) coordinates, a clip with no frame left after dropping body-less frames (zero-length), or
text after the last frame.
"""

from __future__ import annotations

import dataclasses
import os
import re

import numpy as np

from slnl_jax.data.clip import Clip
from slnl_jax.data.errors import SkeletonFormatError, read_lines

NUM_JOINTS = 25
NUM_CHANNELS = 3  # x, y, z in metres (camera space)

# CTR-GCN's denoising thresholds (noise_len_thres, noise_spr_thres1, noise_spr_thres2).
_NOISE_MAX_FRAMES = 11
_SPREAD_RATIO = 0.8
_NOISE_SPREAD_FRACTION = 0.69754

_NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")

NTU60_XSUB_TRAIN_SUBJECTS = frozenset((1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38))
NTU60_XVIEW_TRAIN_CAMERAS = frozenset((2, 3))
NTU120_XSUB_TRAIN_SUBJECTS = frozenset((
  1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38, 45, 46, 47, 49, 50, 52,
  53, 54, 55, 56, 57, 58, 59, 70, 74, 78, 80, 81, 82, 83, 84, 85, 86, 89, 91, 92, 93, 94, 95, 97,
  98, 100, 103,
))  # fmt: skip

# The official action names (github.com/shahroudy/NTURGB-D, README), A001 first.
NTU120_CLASSES = (
  "drink water", "eat meal/snack", "brushing teeth", "brushing hair", "drop", "pickup", "throw",
  "sitting down", "standing up (from sitting position)", "clapping", "reading", "writing",
  "tear up paper", "wear jacket", "take off jacket", "wear a shoe", "take off a shoe",
  "wear on glasses", "take off glasses", "put on a hat/cap", "take off a hat/cap", "cheer up",
  "hand waving", "kicking something", "reach into pocket", "hopping (one foot jumping)", "jump up",
  "make a phone call/answer phone", "playing with phone/tablet", "typing on a keyboard",
  "pointing to something with finger", "taking a selfie", "check time (from watch)",
  "rub two hands together", "nod head/bow", "shake head", "wipe face", "salute",
  "put the palms together", "cross hands in front (say stop)", "sneeze/cough", "staggering",
  "falling", "touch head (headache)", "touch chest (stomachache/heart pain)",
  "touch back (backache)", "touch neck (neckache)", "nausea or vomiting condition",
  "use a fan (with hand or paper)/feeling warm", "punching/slapping other person",
  "kicking other person", "pushing other person", "pat on back of other person",
  "point finger at the other person", "hugging other person", "giving something to other person",
  "touch other person's pocket", "handshaking", "walking towards each other",
  "walking apart from each other", "put on headphone", "take off headphone", "shoot at the basket",
  "bounce ball", "tennis bat swing", "juggling table tennis balls", "hush (quite)", "flick hair",
  "thumb up", "thumb down", "make ok sign", "make victory sign", "staple book", "counting money",
  "cutting nails", "cutting paper (using scissors)", "snapping fingers", "open bottle",
  "sniff (smell)", "squat down", "toss a coin", "fold paper", "ball up paper", "play magic cube",
  "apply cream on face", "apply cream on hand back", "put on bag", "take off bag",
  "put something into a bag", "take something out of a bag", "open a box", "move heavy objects",
  "shake fist", "throw up cap/hat", "hands up (both hands)", "cross arms", "arm circles",
  "arm swings", "running on the spot", "butt kicks (kick backward)", "cross toe touch",
  "side kick", "yawn", "stretch oneself", "blow nose", "hit other person with something",
  "wield knife towards other person", "knock over other person (hit with body)",
  "grab other person's stuff", "shoot at other person with a gun", "step on foot", "high-five",
  "cheers and drink", "carry something with other person", "take a photo of other person",
  "follow other person", "whisper in other person's ear", "exchange things with other person",
  "support somebody with hand", "finger-guessing game (playing rock-paper-scissors)",
)  # fmt: skip
NTU60_CLASSES = NTU120_CLASSES[:60]


def parse_name(name: str) -> dict[str, int]:
  """Protocol ids from a sample name `SsssCcccPpppRrrrAaaa` (a path or `.skeleton` suffix is ok)."""
  stem = os.path.basename(os.fspath(name)).removesuffix(".skeleton")
  match = _NAME_RE.fullmatch(stem)
  if match is None:
    raise SkeletonFormatError(name, "name is not an NTU sample name SsssCcccPpppRrrrAaaa")
  keys = ("setup", "camera", "subject", "replication", "action")
  return dict(zip(keys, map(int, match.groups()), strict=True))


def is_training(meta: dict, protocol: str) -> bool:
  """Whether a sample (ids from `parse_name`) is in the training split of `protocol`.

  Protocols: "xsub" / "xview" (NTU-60 cross-subject / cross-view: cameras 2, 3 train) and
  "xsub120" / "xset" (NTU-120 cross-subject / cross-setup: even setup ids train).
  """
  if protocol == "xsub":
    return meta["subject"] in NTU60_XSUB_TRAIN_SUBJECTS
  if protocol == "xview":
    return meta["camera"] in NTU60_XVIEW_TRAIN_CAMERAS
  if protocol == "xsub120":
    return meta["subject"] in NTU120_XSUB_TRAIN_SUBJECTS
  if protocol == "xset":
    return meta["setup"] % 2 == 0
  raise ValueError(f"unknown NTU protocol {protocol!r}; expected xsub, xview, xsub120 or xset")


def read_missing_list(path: str | os.PathLike) -> set[str]:
  """Sample names in an official `NTU_RGBD*_samples_with_missing_skeletons.txt` list.

  The list has 3 header lines (a sentence, an instruction, a blank line), then one name per line.
  """
  lines = _read_lines(path)
  if len(lines) < 3:
    raise SkeletonFormatError(path, "expected 3 header lines, then one sample name per line")
  names = set()
  for number, line in enumerate(lines[3:], start=4):
    name = line.strip()
    if not name:
      continue
    if _NAME_RE.fullmatch(name) is None:
      raise SkeletonFormatError(path, f"expected a sample name SsssCcccPpppRrrrAaaa, found {name[:40]!r}", number)
    names.add(name)
  return names


@dataclasses.dataclass
class _Body:
  """One Kinect body id's joints, in the frames (0-based file frame indices) where it appears."""

  frames: list[int] = dataclasses.field(default_factory=list)
  joints: list[np.ndarray] = dataclasses.field(default_factory=list)  # each (25, 3) float64

  def motion(self) -> float:
    return float(np.var(np.stack(self.joints), axis=0).sum())

  def wide_fraction(self) -> float:
    """Fraction of frames where the body is wider (x) than `_SPREAD_RATIO` x its height (y)."""
    joints = np.stack(self.joints)
    spread = joints.max(axis=1) - joints.min(axis=1)
    return float(np.mean(spread[:, 0] > _SPREAD_RATIO * spread[:, 1]))


class _Lines:
  """A cursor over a file's lines that raises `SkeletonFormatError` naming the line."""

  def __init__(self, path: str | os.PathLike, lines: list[str]):
    self.path = path
    self.lines = lines
    self.number = 0  # 1-based number of the line last returned

  def fields(self, what: str) -> list[str]:
    if self.number >= len(self.lines):
      raise SkeletonFormatError(self.path, f"unexpected end of file: expected {what}", len(self.lines))
    self.number += 1
    return self.lines[self.number - 1].split()

  def count(self, what: str) -> int:
    fields = self.fields(what)
    if len(fields) != 1 or not _is_count(fields[0]):
      raise self.error(f"expected {what} (a non-negative integer), found {self._found(fields)}")
    return int(fields[0])

  def body_id(self, what: str) -> int:
    """Reads a body info line (10 fields) and returns its body id, the first field."""
    fields = self.fields(what)
    if len(fields) != 10:
      raise self.error(f"expected {what}: 10 numbers, found {len(fields)} fields")
    # The ids are ~7e16, beyond float64's exact integers: parse the text, not a float.
    if not _is_count(fields[0]):
      raise self.error(f"expected {what} to start with an integer body id, found {fields[0]!r}")
    return int(fields[0])

  def joints(self, what: str) -> np.ndarray:
    """Reads 25 joint lines (12 fields each) and returns their x y z, (25, 3) float64."""
    xyz = []
    for v in range(NUM_JOINTS):
      fields = self.fields(f"joint {v + 1} of {what}")
      if len(fields) != 12:
        raise self.error(f"expected joint {v + 1} of {what}: 12 numbers, found {len(fields)}")
      try:
        # Only x y z are used, so only they are converted (4x faster on the full dataset).
        xyz.append((float(fields[0]), float(fields[1]), float(fields[2])))
      except ValueError:
        raise self.error(
          f"expected joint {v + 1} of {what} to start with numbers x y z, found {self._found(fields)}"
        ) from None
    xyz = np.array(xyz)
    with np.errstate(over="ignore"):
      finite = np.isfinite(xyz.astype(np.float32)).all(axis=1)
    if not finite.all():
      bad = int(np.argmin(finite))
      raise SkeletonFormatError(
        self.path,
        f"joint {bad + 1} of {what} has a NaN/Inf (or beyond float32) coordinate",
        self.number - NUM_JOINTS + 1 + bad,
      )
    return xyz

  def error(self, reason: str) -> SkeletonFormatError:
    return SkeletonFormatError(self.path, reason, self.number)

  @staticmethod
  def _found(fields: list[str]) -> str:
    return repr(" ".join(fields)[:60]) if fields else "an empty line"


def _is_count(text: str) -> bool:
  # isdecimal() is what int() accepts; the length cap keeps int() under its digit limit.
  return text.isdecimal() and len(text) < 100


def _read_lines(path: str | os.PathLike) -> list[str]:
  """The file's lines without their LF or CRLF ending (and no empty last line)."""
  lines = read_lines(path)
  if lines[-1] == "":
    lines.pop()
  return lines


def _parse_bodies(path: str | os.PathLike) -> tuple[int, dict[int, _Body]]:
  """(number of frames, body id -> _Body) of a `.skeleton` file, in order of first appearance."""
  lines = _Lines(path, _read_lines(path))
  num_frames = lines.count("the number of frames")
  if num_frames == 0:
    raise lines.error("the file has 0 frames (a zero-length clip)")
  bodies: dict[int, _Body] = {}
  for t in range(num_frames):
    num_bodies = lines.count(f"the number of bodies in frame {t + 1}")
    seen = set()
    for b in range(num_bodies):
      where = f"frame {t + 1}, body {b + 1}"
      body_id = lines.body_id(f"the body info line of {where}")
      if body_id in seen:
        raise lines.error(f"body id {body_id} appears twice in frame {t + 1}")
      seen.add(body_id)
      num_joints = lines.count(f"the number of joints of {where}")
      if num_joints != NUM_JOINTS:
        raise lines.error(f"unknown joint count {num_joints} in {where}: NTU RGB+D (Kinect v2) bodies have 25")
      joints = lines.joints(where)
      body = bodies.setdefault(body_id, _Body())
      body.frames.append(t)
      body.joints.append(joints)
  for number in range(lines.number + 1, len(lines.lines) + 1):
    if lines.lines[number - 1].strip():
      raise SkeletonFormatError(
        path, f"expected the end of the file after {num_frames} frames, found more text", number
      )
  return num_frames, bodies


BODY_RULES = ("length", "spread", "joined", "extra")  # the selection's steps, as counted in meta["body_rules"]


def _select_bodies(bodies: list[_Body], max_bodies: int) -> tuple[list[list[_Body]], dict[str, int]]:
  """Drop noise bodies and fill `max_bodies` persons with the rest (see module doc).

  Returns:
    (persons, counts): each person's bodies (fragments of one actor, most active first), and the
    number of bodies each rule of `BODY_RULES` discarded or joined.
  """
  counts = dict.fromkeys(BODY_RULES, 0)
  for rule, noise in (
    ("length", lambda b: len(b.frames) <= _NOISE_MAX_FRAMES),
    ("spread", lambda b: b.wide_fraction() >= _NOISE_SPREAD_FRACTION),
  ):
    if len(bodies) > 1:
      kept = [b for b in bodies if not noise(b)] or bodies
      counts[rule] = len(bodies) - len(kept)
      bodies = kept
  persons: list[list[_Body]] = []
  # sorted() is stable: equal motion keeps the order of first appearance.
  for body in sorted(bodies, key=lambda b: b.motion(), reverse=True):
    first, last = body.frames[0], body.frames[-1]
    person = next((p for p in persons if all(last < b.frames[0] or first > b.frames[-1] for b in p)), None)
    if person is not None:
      person.append(body)
      counts["joined"] += 1
    elif len(persons) < max_bodies:
      persons.append([body])
    else:
      counts["extra"] += 1
  return persons, counts


def read_skeleton(path: str | os.PathLike, *, max_bodies: int = 2) -> Clip:
  """Reads one NTU `.skeleton` file into a (T, max_bodies, 25, 3) clip.

  Args:
    path: a `SsssCcccPpppRrrrAaaa.skeleton` file. Any other name is read too, with label -1 and
      no protocol ids in `meta` (e.g. for `--mode=predict`).
    max_bodies: persons M of the clip; extra bodies are dropped by the selection in the module doc.

  Returns:
    A `Clip` with label = action - 1 and meta: setup, camera, subject, replication, action (when
    the name is an NTU name), dropped_frames (frames with none of the kept bodies),
    num_bodies_seen (distinct body ids in the file), num_bodies_kept and body_rules (bodies
    each rule of `BODY_RULES` discarded or joined).
  """
  if max_bodies < 1:
    raise ValueError(f"max_bodies must be >= 1, got {max_bodies}")
  num_frames, bodies = _parse_bodies(path)
  persons, body_rules = _select_bodies(list(bodies.values()), max_bodies)
  skeleton = np.zeros((num_frames, max_bodies, NUM_JOINTS, NUM_CHANNELS), np.float32)
  present = np.zeros(num_frames, bool)
  for m, person in enumerate(persons):
    for body in person:
      skeleton[body.frames, m] = np.stack(body.joints)
      present[body.frames] = True
  if not present.any():
    raise SkeletonFormatError(path, f"none of the {num_frames} frames has a body")
  stem = os.path.basename(os.fspath(path)).removesuffix(".skeleton")
  try:
    meta: dict = parse_name(stem)
  except SkeletonFormatError:
    meta = {}
  label = meta["action"] - 1 if meta else -1
  meta.update(
    dropped_frames=int(num_frames - present.sum()),
    num_bodies_seen=len(bodies),
    num_bodies_kept=sum(map(len, persons)),
    body_rules=body_rules,
  )
  return Clip(skeleton=skeleton[present], label=label, name=stem, meta=meta)
