"""Named joint layouts: joint order, bones (for pictures) and channels of each skeleton source.

  ntu25        Kinect v2 (NTU RGB+D), (x, y, z) in metres
  msr20        Kinect v1 (MSR Action3D), (x, y, z) in metres
  openpose18   OpenPose's COCO-18 (Kinetics-skeleton), (x, y, score)
  coco17       COCO-17 keypoints: what RTMPose, YOLO-pose, MMPose, ViTPose and most 2-D estimators emit, (x, y, score)

A 2-D estimator's output becomes a clip with `from_keypoints`, which follows the Kinetics-skeleton convention
(slnl_jax/data/kinetics.py): x / width - 0.5, y / height - 0.5 (the image centre is the origin) and the joint's
score, with a joint of score 0 (not detected) at (0, 0, 0). Such clips go through the custom data path
(configs/custom.py: a `.npz` with `skeleton` (N, T, M, 17, 3)) and `--mode=predict` (a `.npy` / `.npz` clip).
`coco17_to_openpose18` re-orders COCO-17 keypoints into OpenPose-18, so a model trained on Kinetics-skeleton can
classify the output of a COCO-17 estimator.
"""

from __future__ import annotations

import dataclasses

import numpy as np

Bones = tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class Layout:
  """One source's skeleton.

  Attributes:
    name: the key in `LAYOUTS`.
    joints: joint names in the source's order (0-based indices are positions here).
    bones: (joint, joint) index pairs to draw.
    channels: what the C channels of a clip hold, in order.
    image_coordinates: y grows downwards (image pixels), not upwards (Kinect metres).
  """

  name: str
  joints: tuple[str, ...]
  bones: Bones
  channels: tuple[str, ...]
  image_coordinates: bool

  @property
  def num_joints(self) -> int:
    return len(self.joints)


# The dataset's Matlab/show_skeleton.m parent list `connecting_joint = [2 1 21 3 21 5 6 7 21 9 10 11 1 13 14 15 1 17
# 18 19 2 8 8 12 12]` (1-based) as 0-based (joint, parent) pairs; the root, joint 0 (spine base), has no bone.
NTU25 = Layout(
  name="ntu25",
  joints=(
    "spine_base", "spine_mid", "neck", "head", "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand", "left_hip", "left_knee", "left_ankle",
    "left_foot", "right_hip", "right_knee", "right_ankle", "right_foot", "spine_shoulder", "left_hand_tip",
    "left_thumb", "right_hand_tip", "right_thumb",
  ),
  bones=(
    (1, 0), (2, 20), (3, 2), (4, 20), (5, 4), (6, 5), (7, 6), (8, 20), (9, 8), (10, 9), (11, 10), (12, 0),
    (13, 12), (14, 13), (15, 14), (16, 0), (17, 16), (18, 17), (19, 18), (20, 1), (21, 7), (22, 7), (23, 11),
    (24, 11),
  ),
  channels=("x", "y", "z"),
  image_coordinates=False,
)  # fmt: skip

# The MSR Action3D release's order (its skeleton3D.txt files); the release does not say which side is which.
MSR20 = Layout(
  name="msr20",
  joints=(
    "shoulder_1", "shoulder_2", "shoulder_centre", "spine", "hip_1", "hip_2", "hip_centre", "elbow_1", "elbow_2",
    "wrist_1", "wrist_2", "hand_1", "hand_2", "knee_1", "knee_2", "ankle_1", "ankle_2", "foot_1", "foot_2", "head",
  ),
  bones=(
    (19, 2), (0, 2), (1, 2), (3, 2), (6, 3), (4, 6), (5, 6), (7, 0), (8, 1), (9, 7), (10, 8), (11, 9), (12, 10),
    (13, 4), (14, 5), (15, 13), (16, 14), (17, 15), (18, 16),
  ),
  channels=("x", "y", "z"),
  image_coordinates=False,
)  # fmt: skip

# The edges of ST-GCN's Kinetics graph.
OPENPOSE18 = Layout(
  name="openpose18",
  joints=(
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder", "left_elbow", "left_wrist",
    "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "right_eye", "left_eye",
    "right_ear", "left_ear",
  ),
  bones=(
    (4, 3), (3, 2), (7, 6), (6, 5), (13, 12), (12, 11), (10, 9), (9, 8), (11, 5), (8, 2), (5, 1), (2, 1), (0, 1),
    (15, 0), (14, 0), (17, 15), (16, 14),
  ),
  channels=("x", "y", "score"),
  image_coordinates=True,
)  # fmt: skip

# The COCO keypoint annotation's `skeleton` (1-based there), 0-based.
COCO17 = Layout(
  name="coco17",
  joints=(
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
  ),
  bones=(
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
  ),
  channels=("x", "y", "score"),
  image_coordinates=True,
)  # fmt: skip

LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (NTU25, MSR20, OPENPOSE18, COCO17)}


def for_num_joints(num_joints: int) -> Layout | None:
  """The layout with `num_joints` joints (the four have distinct counts), or None."""
  return next((layout for layout in LAYOUTS.values() if layout.num_joints == num_joints), None)


def from_keypoints(keypoints: np.ndarray, scores: np.ndarray, *, width: float, height: float) -> np.ndarray:
  """A 2-D estimator's pixels -> (x, y, score) channels in the Kinetics-skeleton convention.

  Args:
    keypoints: (..., V, 2) pixel coordinates (x right, y down).
    scores: (..., V) detection scores in [0, 1]; 0 means not detected.
    width, height: the image size in pixels.

  Returns:
    (..., V, 3) float32: x / width - 0.5, y / height - 0.5, score; (0, 0, 0) where the score is 0.
  """
  keypoints = np.asarray(keypoints, np.float32)
  scores = np.asarray(scores, np.float32)
  if keypoints.shape[-1] != 2 or keypoints.shape[:-1] != scores.shape:
    raise ValueError(f"expected keypoints (..., V, 2) and scores (..., V), got {keypoints.shape} and {scores.shape}")
  size = np.array([width, height], np.float32)
  channels = np.concatenate([keypoints / size - 0.5, scores[..., None]], axis=-1)
  return np.where(scores[..., None] > 0, channels, 0.0).astype(np.float32)


# OpenPose-18 joint i is COCO-17 joint _COCO_OF_OPENPOSE[i]; the neck (-1) is not in COCO.
_COCO_OF_OPENPOSE = (0, -1, 6, 8, 10, 5, 7, 9, 12, 14, 16, 11, 13, 15, 2, 1, 4, 3)


def coco17_to_openpose18(clip: np.ndarray) -> np.ndarray:
  """COCO-17 (x, y, score) channels -> OpenPose-18 joint order.

  The neck, which COCO lacks, is the midpoint of the shoulders with the lower of their two scores (our
  choice: zero, i.e. not detected, unless both shoulders are), as OpenPose places it between them.

  Args:
    clip: (..., 17, 3) in `from_keypoints`' convention.

  Returns:
    (..., 18, 3) float32.
  """
  clip = np.asarray(clip, np.float32)
  if clip.shape[-2:] != (17, 3):
    raise ValueError(f"expected COCO-17 (x, y, score) joints (..., 17, 3), got {clip.shape}")
  shoulders = clip[..., [5, 6], :]
  score = shoulders[..., 2].min(axis=-1, keepdims=True)
  neck = np.concatenate([shoulders[..., :2].mean(axis=-2), score], axis=-1)
  neck = np.where(score > 0, neck, 0.0)
  out = clip[..., [max(j, 0) for j in _COCO_OF_OPENPOSE], :]
  out[..., 1, :] = neck
  return out
