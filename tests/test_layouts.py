"""Joint layouts against the sources' own definitions and hand-worked conversions."""

import numpy as np
import pytest

from slnl_jax.data import layouts

# The COCO keypoint annotation's "skeleton" field, 1-based, as published with person_keypoints_*.json.
COCO_SKELETON_1_BASED = [
  [16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9], [8, 10], [9, 11],
  [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7],
]  # fmt: skip


def _connected(num_joints, bones):
  reached, frontier = {0}, [0]
  while frontier:
    joint = frontier.pop()
    for a, b in bones:
      for other in (b,) if a == joint else (a,) if b == joint else ():
        if other not in reached:
          reached.add(other)
          frontier.append(other)
  return len(reached) == num_joints


@pytest.mark.parametrize("name", sorted(layouts.LAYOUTS))
def test_bones_join_every_joint(name):
  layout = layouts.LAYOUTS[name]
  assert layout.name == name
  assert len(set(layout.joints)) == layout.num_joints
  assert all(0 <= j < layout.num_joints for bone in layout.bones for j in bone)
  assert len({frozenset(bone) for bone in layout.bones}) == len(layout.bones)
  assert _connected(layout.num_joints, layout.bones)


def test_coco_bones_are_the_published_skeleton():
  assert {frozenset(b) for b in layouts.COCO17.bones} == {frozenset((a - 1, b - 1)) for a, b in COCO_SKELETON_1_BASED}


def test_pose_estimator_layouts_carry_scores_in_image_coordinates():
  for layout in (layouts.COCO17, layouts.OPENPOSE18):
    assert layout.channels == ("x", "y", "score") and layout.image_coordinates
  assert layouts.NTU25.channels == ("x", "y", "z") and not layouts.NTU25.image_coordinates


def test_for_num_joints():
  assert layouts.for_num_joints(17) is layouts.COCO17
  assert layouts.for_num_joints(18) is layouts.OPENPOSE18
  assert layouts.for_num_joints(25) is layouts.NTU25
  assert layouts.for_num_joints(7) is None


def test_from_keypoints_hand_worked():
  # A 200 x 100 image: (150, 25) is right of and above the centre (100, 50).
  keypoints = np.array([[150.0, 25.0], [0.0, 100.0], [80.0, 40.0]])
  scores = np.array([0.8, 1.0, 0.0])
  out = layouts.from_keypoints(keypoints, scores, width=200, height=100)
  np.testing.assert_allclose(out, [[0.25, -0.25, 0.8], [-0.5, 0.5, 1.0], [0.0, 0.0, 0.0]], rtol=1e-6)
  assert out.dtype == np.float32
  with pytest.raises(ValueError, match="keypoints"):
    layouts.from_keypoints(keypoints, scores[:2], width=200, height=100)


def test_coco_to_openpose_matches_joints_by_name():
  rng = np.random.default_rng(0)
  coco = rng.uniform(0.1, 1.0, (4, 2, 17, 3)).astype(np.float32)  # (T, M, V, C), all detected
  openpose = layouts.coco17_to_openpose18(coco)
  assert openpose.shape == (4, 2, 18, 3)
  for i, name in enumerate(layouts.OPENPOSE18.joints):
    if name == "neck":
      continue
    np.testing.assert_array_equal(openpose[..., i, :], coco[..., layouts.COCO17.joints.index(name), :])
  neck = openpose[..., 1, :]
  left, right = coco[..., 5, :], coco[..., 6, :]
  np.testing.assert_allclose(neck[..., :2], (left[..., :2] + right[..., :2]) / 2, rtol=1e-6)
  np.testing.assert_array_equal(neck[..., 2], np.minimum(left[..., 2], right[..., 2]))


def test_neck_is_missing_when_a_shoulder_is():
  coco = np.full((17, 3), 0.5, np.float32)
  coco[6] = 0.0  # right shoulder not detected
  np.testing.assert_array_equal(layouts.coco17_to_openpose18(coco)[1], [0.0, 0.0, 0.0])
  with pytest.raises(ValueError, match="COCO-17"):
    layouts.coco17_to_openpose18(np.zeros((18, 3)))
