r"""Northwestern-UCLA, cross-view (views 1 + 2 train: 1,020; view 3 tests: 464), 10 classes: SLnL-rFA sized for it.

  python -m slnl_jax.main --config=configs/nw_ucla.py --workdir=DIR --config.dataset.manual_dir=/path/to/all_sqe
  python -m slnl_jax.main --config=configs/nw_ucla.py:paper ...  # the paper's network instead (below)

The raw files are CTR-GCN's `all_sqe/aAA_sSS_eEE_vVV.json` (slnl_jax/data/nw_ucla.py). Their folder comes from
--config.dataset.manual_dir, or from `$SLNL_SHARED_DATA/nw_ucla/all_sqe` when that variable is set; a dataset
already built in config.dataset.data_dir needs neither. `nw_ucla/view_val` (view 1 trains, view 2 tests) is the
validation protocol on which every setting here was chosen, never view 3: --config.dataset.name=nw_ucla/view_val
(`nw_ucla/view_val2`, view 2 trains and view 1 tests, is its second fold, added on 2026-12-05).

The network is the paper's (transform network, rFA, SMFL, SLnL then local blocks) at the size that did best on
view_val (docs/results.md): T = 16 frames, N' = 16 learned joints, K = 4 coordinate systems, channels 32-32-64-64,
M1 = 2 SLnL blocks + 2 local, SMFL(gamma 2, margin 0.6) (the paper's cross-view loss, Table 3). 120 epochs of 63
steps of batch 16 with lr decay 0.977 per epoch: on view 3 docs/results.md's "120 epochs, tilts of 20 degrees"
(with `--config.dataset.train_tilt_deg=60`, the tilts it had before, it reproduces the seed 0 of "120 epochs: the
chain's ends" to the last digit, 88.58 %). 28.5 minutes alone on 2 CPU cores when it evaluated 25 views every 5
epochs (24 evaluations of about 27 s each, a third of the time); it now evaluates every 10 epochs, 12 evaluations:
23.2 minutes, the same 88.58 %
(`--config.train.eval_every_epochs=120` evaluates once, at the end; how often a run evaluates changes nothing else
in it). Every one of the paper's larger sizes did worse on view_val: K = 10, N' = 24, wider channels, T = 32, and
the whole paper-sized network (`:paper`: T = 32, N' = 32, K = 10, six blocks of 64-256 channels, M1 = 3 as for NTU
cross-view, 100 epochs with lr decay 0.96) 62.70 % against 81.35 % (seed 0), at the same training accuracy.

Clips are fed as CTR-GCN's N-UCLA feeder feeds its model: centred on joint 1 of the first frame, each axis min-max
normalised onto [-1, 1], training clips turned about y by U[-60, 60] degrees (about 3 points above raw camera
coordinates on view_val), but tilted about x by U[-20, 20] degrees instead of the feeder's U[-60, 60]: on both
validation folds (view_val and view_val2, seeds 0 and 1) 77.59 % on average against 76.14 % (2026-12-05). Each
test clip is scored by the mean probability of 25 views: 5 centred crops (ratios 0.5 to 1.0, `eval_clips`), each
turned about the vertical axis by -60, -30, 0, 30 and 60 degrees (`eval_turns`, the training turns' range): 81.35 /
81.35 % on view_val (seeds 0 / 1, tilts of 60 degrees) against 78.77 / 79.56 % for the 5 crops alone and 77.58 /
78.57 % for the single 95 % crop. The four crops shorter than the clip are also taken at its start and its end
(`eval_offsets` 3: 13 crops, 65 views): on both validation folds, the same last checkpoints, 78.22 % on average
against 77.59 % for the centred crops alone (2026-12-05, the rule of docs/results.md); on view 3 it scored the
full model 0.65 points lower (89.44 against 90.09 %; docs/results.md says what that means). Training clips are
blended with their batch neighbours (mixup, `train.mixup_alpha` 0.2, not the paper's): chosen on seeds 0 and 1 of
both folds by 0.49 points, short of the rule, then confirmed on fresh seeds 3 and 4 by a rule written before they
ran: 78.66 % against 76.85 %, higher on both folds (2026-12-06). On view 3 it moved the full model from 89.44 to
89.87 % and Baseline1 from 90.23 to 89.01 % (3 seeds, docs/results.md's "120 epochs, mixup"). A clip is scored by
the mean probability of the three heads (`eval_heads` "all"; the paper's is the concat head's): on the preset's ten
validation runs 79.57 % against 78.78 % (2026-12-06, a rule written before), on view 3 89.66 % against 89.87 %.
Against it, channels (48, 48, 96, 96), dropout 0.1 and tilts of 35 degrees did not pass (79.57, 79.87 and 78.65 %
against 79.44 %, seeds 0 and 1 of both folds, each lower on the first fold), nor did self-distillation, average and
max pooling, a frozen limb (each lower on both folds) or one scale for all three axes (80.60 %, 0.40 lower on the
first fold), scratch patches measured the same way. The last, as `dataset.minmax_isotropic`, then failed on fresh
seeds 3 and 4 too (79.67 % against 79.40 %, 1.59 lower on the first fold; docs/results.md), so it stays off.
"""

import os

import ml_collections

from configs import default


def get_config(size: str = "") -> ml_collections.ConfigDict:
  """`size` "" (the measured preset) or "paper" (the paper's network: six blocks, K = 10, N' = 32, T = 32)."""
  if size not in ("", "paper"):
    raise ValueError(f"unknown N-UCLA size {size!r}: expected --config=configs/nw_ucla.py or configs/nw_ucla.py:paper")
  config = default.get_config()
  config.dataset.name = "nw_ucla/cross_view"
  shared = os.environ.get("SLNL_SHARED_DATA")
  config.dataset.manual_dir = os.path.join(shared, "nw_ucla", "all_sqe") if shared else ""
  config.dataset.num_classes = 10
  config.dataset.num_joints = 20
  config.dataset.num_persons = 1
  config.dataset.num_channels = 3
  config.dataset.num_frames = 16
  config.dataset.shuffle_buffer = 2048
  config.dataset.center_joint = 1
  config.dataset.minmax_normalize = True
  config.dataset.train_rotation_deg = 60.0
  config.dataset.train_tilt_deg = 20.0
  config.dataset.eval_clips = 5
  config.dataset.eval_turns = 5
  config.dataset.eval_offsets = 3
  config.dataset.eval_heads = "all"

  config.model.num_joints_out = 16
  config.model.num_systems = 4
  config.model.channels = (32, 32, 64, 64)
  config.model.kernel_sizes = (3, 3, 3, 3)
  config.model.num_slnl_blocks = 2
  config.loss.margin = 0.6

  config.train.batch_size = 16
  config.train.num_epochs = 120
  config.train.lr_decay = 0.977
  config.train.log_every_steps = 20
  config.train.eval_every_epochs = 10
  config.train.mixup_alpha = 0.2
  if size == "paper":
    config.dataset.num_frames = 32
    config.model.num_joints_out = 32
    config.model.num_systems = 10
    config.model.channels = (64, 64, 128, 128, 256, 256)
    config.model.kernel_sizes = (3, 3, 3, 3, 3, 3)
    config.model.num_slnl_blocks = 3
    config.train.num_epochs = 100
    config.train.lr_decay = 0.96
  return config
