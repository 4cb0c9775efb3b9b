"""SYNTHETIC demo data: procedurally generated NTU-format `.skeleton` files (no real recordings).

Nothing here was captured by a sensor. A 25-joint kinematic skeleton in the NTU RGB+D (Kinect v2)
joint order, with bone lengths in metres, performs one of a handful of periodic actions; each clip
draws a speed, amplitude, phase, camera view, position and sensor noise at random, and a few clips
lose every body for some frames (the real NTU reader drops and counts such frames). The files use
the exact Kinect v2 text layout and `SsssCcccPpppRrrrAaaa` names, so `make demo` runs the real NTU
reader, TFDS builder and input pipeline end to end with no download. Accuracy on this data says
nothing about the paper's results.

Labels: action id `Aaaa` (1-based, 1..len(CLASSES)) maps to label `aaa - 1`, the same rule as NTU;
the names are in `CLASSES` (this demo's own list, unrelated to NTU's classes). Performer ids are
1..40 and cameras 1..3 with NTU's meaning (camera 1 faces the actor, 2 and 3 are 45 degrees to
either side), so NTU's cross-subject and cross-view splits apply unchanged. A performer's body size
depends on the performer id only, so the same person looks the same in every clip.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import numpy as np

CLASSES = (
  "waving",
  "clapping",
  "squatting",
  "kicking",
  "jumping",
  "arm circles",
  "handshaking",
  "pushing",
)
TWO_PERSON_ACTIONS = frozenset({7, 8})  # 1-based action ids
NUM_JOINTS = 25
FPS = 30.0

# NTU joint order (0-based): 0 spine base, 1 spine mid, 2 neck, 3 head, 4-7 left shoulder/elbow/
# wrist/hand, 8-11 right shoulder/elbow/wrist/hand, 12-15 left hip/knee/ankle/foot, 16-19 right
# hip/knee/ankle/foot, 20 spine shoulder, 21/22 left hand tip/thumb, 23/24 right hand tip/thumb.
PARENTS = (-1, 0, 20, 2, 20, 4, 5, 6, 20, 8, 9, 10, 0, 12, 13, 14, 0, 16, 17, 18, 1, 7, 7, 11, 11)
# Bone vector from the parent in the body frame (x = the person's left, y = up, z = forward), metres.
OFFSETS = np.array(
  [
    (0.0, 0.0, 0.0),
    (0.0, 0.28, 0.0),
    (0.0, 0.07, 0.0),
    (0.0, 0.14, 0.02),
    (0.17, -0.03, 0.0),
    (0.0, -0.27, 0.0),
    (0.0, -0.25, 0.0),
    (0.0, -0.07, 0.0),
    (-0.17, -0.03, 0.0),
    (0.0, -0.27, 0.0),
    (0.0, -0.25, 0.0),
    (0.0, -0.07, 0.0),
    (0.08, -0.05, 0.0),
    (0.0, -0.42, 0.0),
    (0.0, -0.40, 0.0),
    (0.0, -0.04, 0.10),
    (-0.08, -0.05, 0.0),
    (0.0, -0.42, 0.0),
    (0.0, -0.40, 0.0),
    (0.0, -0.04, 0.10),
    (0.0, 0.22, 0.0),
    (0.0, -0.07, 0.0),
    (0.0, -0.03, 0.04),
    (0.0, -0.07, 0.0),
    (0.0, -0.03, 0.04),
  ]
)
_LEAVES = frozenset(j for j in range(NUM_JOINTS) if j not in PARENTS)
_FEET = (14, 15, 18, 19)
_CAMERA_YAW = {1: 0.0, 2: np.pi / 4, 3: -np.pi / 4}  # NTU: camera 1 frontal, 2/3 at +-45 degrees
_JOINT_LINE = "%.7g " * 11 + "2"  # x y z depthX depthY colorX colorY qw qx qy qz trackingState
_BODY_ID_BASE = 72057594037927936  # Kinect v2 tracking ids look like 7205759403793xxxx


def _rot(axis: int, angle: np.ndarray) -> np.ndarray:
  """Rotation matrices (T, 3, 3) about body axis 0 (x), 1 (y) or 2 (z) by `angle` (T,) radians."""
  angle = np.broadcast_to(np.asarray(angle, np.float64), np.shape(angle))
  c, s = np.cos(angle), np.sin(angle)
  m = np.zeros((*np.shape(angle), 3, 3))
  i, j = [(1, 2), (2, 0), (0, 1)][axis]
  m[..., axis, axis] = 1.0
  m[..., i, i] = c
  m[..., j, j] = c
  m[..., i, j] = -s
  m[..., j, i] = s
  return m


def _topological_order() -> list[int]:
  order, done = [], set()
  while len(order) < NUM_JOINTS:
    for j, p in enumerate(PARENTS):
      if j not in done and (p < 0 or p in done):
        order.append(j)
        done.add(j)
  return order


_ORDER = _topological_order()


def forward_kinematics(
  local: dict[int, np.ndarray], num_frames: int, scale: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
  """Joint positions (T, 25, 3) and global rotations (T, 25, 3, 3) in the body frame.

  `local[j]` (T, 3, 3) rotates the bones below joint j relative to its parent; absent = identity.
  """
  eye = np.broadcast_to(np.eye(3), (num_frames, 3, 3))
  pos = np.zeros((num_frames, NUM_JOINTS, 3))
  rot = np.zeros((num_frames, NUM_JOINTS, 3, 3))
  for j in _ORDER:
    p = PARENTS[j]
    if p >= 0:
      pos[:, j] = pos[:, p] + np.einsum("tij,j->ti", rot[:, p], scale * OFFSETS[j])
      rot[:, j] = rot[:, p] @ local.get(j, eye)
    else:
      rot[:, j] = local.get(j, eye)
  return pos, rot


@dataclasses.dataclass(frozen=True)
class _Person:
  """One performer's motion in the shared world frame (x left of camera 1's view, y up)."""

  local: dict[int, np.ndarray]  # joint -> (T, 3, 3) local rotations
  root: np.ndarray  # (T, 3) extra world translation of the spine base (e.g. a push)
  yaw: float  # facing direction in the world: 0 faces camera 1
  lift: np.ndarray  # (T,) height above the ground (jumping)


def _limbs(t: np.ndarray, phase: np.ndarray, amp: float, action: int) -> list[_Person]:
  """The periodic joint rotations of one action (hand-made motions, not fitted to any data)."""
  s, c = np.sin(phase), np.cos(phase)
  zero = np.zeros_like(t)
  rx, ry, rz = (lambda a, k=k: _rot(k, a) for k in range(3))

  def person(local, root=None, yaw=0.0, lift=zero) -> _Person:
    return _Person(local, np.zeros((t.size, 3)) if root is None else root, yaw, lift)

  if action == 1:  # waving: right arm raised, forearm sweeping side to side
    return [person({8: rz(np.full_like(t, -1.3)), 9: rz(-(0.9 + 0.6 * amp * s))})]
  if action == 2:  # clapping: arms forward, opening and closing horizontally
    opening = -0.25 + 0.7 * amp * (1 + s) / 2
    return [
      person(
        {
          4: ry(opening) @ rx(np.full_like(t, -1.3)),
          8: ry(-opening) @ rx(np.full_like(t, -1.3)),
          5: rx(np.full_like(t, -0.3)),
          9: rx(np.full_like(t, -0.3)),
        }
      )
    ]
  if action == 3:  # squatting: hips and knees flex together, feet stay flat, arms forward
    e = amp * (1 - c) / 2
    hip, knee = 1.3 * e, 2.2 * e
    legs = {12: rx(-hip), 16: rx(-hip), 13: rx(knee), 17: rx(knee)}
    legs |= {14: rx(hip - knee), 18: rx(hip - knee), 4: rx(-1.3 * e), 8: rx(-1.3 * e)}
    return [person(legs)]
  if action == 4:  # kicking: the right leg swings forward, the arms counter-swing a little
    swing = 1.2 * amp * np.maximum(0.0, s)
    knee = 0.9 * np.maximum(0.0, -s)
    return [person({16: rx(-swing), 17: rx(knee), 4: rx(-0.4 * s), 8: rx(0.4 * s)})]
  if action == 5:  # jumping: crouch, then take off with the arms swinging up
    crouch = amp * np.maximum(0.0, -s)
    up = np.maximum(0.0, s)
    legs = {12: rx(-0.7 * crouch), 16: rx(-0.7 * crouch), 13: rx(1.3 * crouch), 17: rx(1.3 * crouch)}
    legs |= {14: rx(-0.6 * crouch), 18: rx(-0.6 * crouch), 4: rx(-2.6 * up), 8: rx(-2.6 * up)}
    return [person(legs, lift=0.25 * amp * up)]
  if action == 6:  # arm circles: arms held out to the sides, hands drawing circles
    circle = 0.45 * amp
    return [
      person(
        {
          4: rz(1.5 + circle * s) @ rx(circle * c),
          8: rz(-(1.5 + circle * s)) @ rx(circle * c),
        }
      )
    ]
  if action == 7:  # handshaking: two people face to face, right hands pumping up and down
    pump = 0.3 * amp * np.sin(2 * phase)
    arm = {8: ry(np.full_like(t, 0.35)) @ rx(np.full_like(t, -0.7)), 9: rx(-0.9 + pump)}
    return [person(dict(arm), yaw=np.pi / 2), person(dict(arm), yaw=-np.pi / 2)]
  if action == 8:  # pushing: one person extends both arms, the other is pushed back
    push = amp * (1 + s) / 2
    arms = {4: rx(np.full_like(t, -1.4)), 8: rx(np.full_like(t, -1.4))}
    arms |= {5: rx(-1.2 * (1 - push)), 9: rx(-1.2 * (1 - push))}
    pusher = np.stack([0.12 * push, zero, zero], axis=-1)
    pushed = np.stack([0.3 * push, zero, zero], axis=-1)
    victim = {1: rx(0.3 * push), 4: rx(np.full_like(t, -0.4)), 8: rx(np.full_like(t, -0.4))}
    return [person(arms, pusher, yaw=np.pi / 2), person(victim, pushed, yaw=-np.pi / 2)]
  raise ValueError(f"action must be in 1..{len(CLASSES)}, got {action}")


@dataclasses.dataclass(frozen=True)
class Sample:
  """One synthetic clip as written to disk.

  Attributes:
    name: `SsssCcccPpppRrrrAaaa`.
    joints: (T, B, 25, 3) camera-space x, y, z in metres for every frame, including absent ones.
    orientations: (T, B, 25, 4) joint orientation quaternions (w, x, y, z), zeros at end joints.
    present: (T,) bool; False marks frames written with a body count of 0.
  """

  name: str
  joints: np.ndarray
  orientations: np.ndarray
  present: np.ndarray

  @property
  def num_bodies(self) -> int:
    return int(self.joints.shape[1])


def sample_name(setup: int, camera: int, subject: int, replication: int, action: int) -> str:
  return f"S{setup:03d}C{camera:03d}P{subject:03d}R{replication:03d}A{action:03d}"


def _quaternions(rot: np.ndarray) -> np.ndarray:
  """(w, x, y, z) of rotation matrices (..., 3, 3)."""
  m = rot
  diag = np.stack(
    [
      1 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2],
      1 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2],
      1 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2],
      1 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2],
    ],
    axis=-1,
  )
  q = 0.5 * np.sqrt(np.maximum(diag, 0.0))
  signs = np.stack([m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1)
  q[..., 1:] = np.copysign(q[..., 1:], signs)
  return q


def make_sample(
  rng: np.random.Generator,
  *,
  action: int,
  setup: int,
  camera: int,
  subject: int,
  replication: int,
  num_frames: int,
  noise: float = 0.008,
  missing_prob: float = 0.25,
) -> Sample:
  """Generates one clip: random speed (0.6-1.4 Hz), amplitude, phase, view jitter, place, noise."""
  t = np.arange(num_frames) / FPS
  phase = 2 * np.pi * rng.uniform(0.6, 1.4) * t + rng.uniform(0, 2 * np.pi)
  amp = rng.uniform(0.7, 1.2)
  # Body size depends on the performer only (golden-ratio hash of the id): 0.88x to 1.12x.
  scale = 0.88 + 0.24 * ((subject * 0.6180339887) % 1.0)
  view = _CAMERA_YAW[camera] + rng.uniform(-np.pi / 12, np.pi / 12)
  # Kinect camera space: x to the sensor's left, y up, z away from the sensor. An actor facing the
  # sensor has their left at -x, so world (person's left, up, towards the sensor) maps by a half-turn.
  to_camera = _rot(1, np.array(np.pi + view))
  origin = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-1.0, -0.8), rng.uniform(2.6, 3.6)])
  people = _limbs(t, phase, amp, action)
  joints, quats = [], []
  for k, who in enumerate(people):
    pos, rot = forward_kinematics(who.local, num_frames, scale)
    facing = _rot(1, np.array(who.yaw))
    pos = np.einsum("ij,tvj->tvi", facing, pos)
    pos[..., 1] -= pos[:, _FEET, 1].min(axis=1, keepdims=True)  # stand on the ground...
    pos[..., 1] += who.lift[:, None]  # ...unless jumping
    side = 0.45 * (1 - 2 * k) * (len(people) > 1)  # two people stand 0.9 m apart
    pos += who.root[:, None] + np.array([-side, 0.0, 0.0])
    cam = np.einsum("ij,tvj->tvi", to_camera, pos) + origin
    joints.append(cam + rng.normal(0.0, noise, cam.shape))
    q = _quaternions(to_camera @ facing @ rot)
    q[:, sorted(_LEAVES)] = 0.0  # Kinect reports no orientation for end joints
    quats.append(q)
  present = np.ones(num_frames, bool)
  if rng.uniform() < missing_prob:  # the tracker loses everyone for a few frames
    gap = int(rng.integers(1, 5))
    start = int(rng.integers(0, num_frames - gap))
    present[start : start + gap] = False
  name = sample_name(setup, camera, subject, replication, action)
  return Sample(name, np.stack(joints, 1), np.stack(quats, 1), present)


def _project(xyz: np.ndarray, f: float, cx: float, cy: float, dx: float = 0.0) -> np.ndarray:
  """Pinhole projection to pixels (Kinect v2 depth: 512x424, colour: 1920x1080)."""
  z = np.maximum(xyz[..., 2], 0.1)
  return np.stack([cx + f * (xyz[..., 0] + dx) / z, cy - f * xyz[..., 1] / z], axis=-1)


def skeleton_text(sample: Sample, body_ids: tuple[int, ...]) -> str:
  """The sample in the NTU `.skeleton` layout (CRLF line ends, as in the original release)."""
  depth = _project(sample.joints, 365.0, 256.0, 212.0)
  color = _project(sample.joints, 1081.0, 960.0, 540.0, dx=0.05)
  fields = np.concatenate([sample.joints, depth, color, sample.orientations], axis=-1)
  lines = [str(len(sample.present))]
  for t, present in enumerate(sample.present):
    lines.append(str(sample.num_bodies if present else 0))
    if not present:
      continue
    for b in range(sample.num_bodies):
      spine = sample.joints[t, b, 20] - sample.joints[t, b, 0]
      lean_x, lean_y = spine[0] / 0.5, -spine[2] / 0.5
      lines.append(f"{body_ids[b]} 0 1 1 1 1 0 {lean_x:.7g} {lean_y:.7g} 2")
      lines.append(str(NUM_JOINTS))
      lines.extend(_JOINT_LINE % tuple(row) for row in fields[t, b].tolist())
  return "\r\n".join(lines) + "\r\n"


def write_skeleton(path: str | os.PathLike, sample: Sample, rng: np.random.Generator) -> None:
  """Writes one sample; `rng` draws the Kinect body tracking ids."""
  ids = tuple(_BODY_ID_BASE + int(i) for i in rng.integers(1000, 10_000, sample.num_bodies))
  pathlib.Path(path).write_bytes(skeleton_text(sample, ids).encode("ascii"))


def write_dataset(
  out_dir: str | os.PathLike,
  *,
  num_clips: int,
  seed: int,
  min_frames: int = 40,
  max_frames: int = 100,
  num_setups: int = 17,
  num_subjects: int = 40,
) -> list[pathlib.Path]:
  """Writes `num_clips` synthetic `.skeleton` files into `out_dir`; returns their sorted paths.

  Classes are balanced (clip i performs action `i % len(CLASSES) + 1`); setup, camera, performer and
  replication are drawn at random without repeating a name. The same arguments give the same bytes.
  """
  capacity = num_setups * 3 * num_subjects * 2
  if not 0 < num_clips <= capacity * len(CLASSES):
    raise ValueError(f"num_clips must be in 1..{capacity * len(CLASSES)}, got {num_clips}")
  if not 2 <= min_frames <= max_frames:
    raise ValueError(f"need 2 <= min_frames <= max_frames, got {min_frames}, {max_frames}")
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)

  def draw(n: int) -> int:
    return int(rng.integers(1, n + 1))

  names, paths = set(), []
  for i in range(num_clips):
    action = i % len(CLASSES) + 1
    while True:
      ids = dict(setup=draw(num_setups), camera=draw(3), subject=draw(num_subjects), replication=draw(2))
      if sample_name(action=action, **ids) not in names:
        break
    frames = int(rng.integers(min_frames, max_frames + 1))
    sample = make_sample(rng, action=action, num_frames=frames, **ids)
    names.add(sample.name)
    path = out / f"{sample.name}.skeleton"
    write_skeleton(path, sample, rng)
    paths.append(path)
  return sorted(paths)
