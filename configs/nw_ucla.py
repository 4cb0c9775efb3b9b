r"""Northwestern-UCLA, cross-view (views 1 + 2 train: 1,020; view 3 tests: 464), 10 classes: the paper's SLnL-rFA.

  python -m slnl_jax.main --config=configs/nw_ucla.py --workdir=DIR --config.dataset.manual_dir=/path/to/all_sqe

The raw files are CTR-GCN's `all_sqe/aAA_sSS_eEE_vVV.json` (slnl_jax/data/nw_ucla.py). Their folder comes from
--config.dataset.manual_dir, or from `$SLNL_SHARED_DATA/nw_ucla/all_sqe` when that variable is set; a dataset
already built in config.dataset.data_dir needs neither. `nw_ucla/view_val` (view 1 trains, view 2 tests) is the
validation protocol on which settings are chosen: --config.dataset.name=nw_ucla/view_val.

The paper's network (Sec. 4.1: K = 10 systems, six blocks of 64-64-128-128-256-256 channels, rFA, SMFL) sized for
one person and 20 joints: N' = 32 joints out of the skeleton transformer (the paper maps NTU's 25 joints to 64;
we keep the same ratio of under 2x), T = 32 frames (the median clip has 31; many have under 20). As for NTU
cross-view, M1 = 3 SLnL blocks and SMFL(gamma 2, margin 0.6), the paper's cross-view loss (Table 3). 1,020
clips give 63 steps of batch 16 per epoch; 100 epochs with lr decay 0.96 replace the paper's NTU schedule (an
accelerator-sized preset; configs/nw_ucla_cpu.py is the measured one: on the validation protocol this model
reached 62.70 % against that preset's 81.35 %, seed 0, docs/results.md, so it was not run on view 3). Clips are fed as
CTR-GCN's N-UCLA feeder feeds its model: centred on joint 1 of the first frame, each axis min-max normalised onto
[-1, 1], training clips turned about y and tilted about x by U[-60, 60] degrees (config.dataset); on the
validation protocol this beat raw camera coordinates by about 3 points at the CPU preset's 60 epochs
(docs/results.md). Each test clip is scored by the mean probability of 25 views: 5 centred crops (ratios 0.5 to
1.0, `eval_clips`), each turned about the vertical axis by -60, -30, 0, 30 and 60 degrees (`eval_turns`, the range
the training clips are turned over). Chosen on the validation protocol with both seeds of the CPU preset's
120-epoch run: 81.35 / 81.35 % against 78.77 / 79.56 % for the 5 crops alone and 77.58 / 78.57 % for the single
95 % crop; 3 or 10 crops and 3 turns were no better (docs/results.md).
"""

import os

import ml_collections

from configs import default


def get_config() -> ml_collections.ConfigDict:
  config = default.get_config()
  config.dataset.name = "nw_ucla/cross_view"
  shared = os.environ.get("SLNL_SHARED_DATA")
  config.dataset.manual_dir = os.path.join(shared, "nw_ucla", "all_sqe") if shared else ""
  config.dataset.num_classes = 10
  config.dataset.num_joints = 20
  config.dataset.num_persons = 1
  config.dataset.num_channels = 3
  config.dataset.num_frames = 32
  config.dataset.shuffle_buffer = 2048
  config.dataset.center_joint = 1
  config.dataset.minmax_normalize = True
  config.dataset.train_rotation_deg = 60.0
  config.dataset.train_tilt_deg = 60.0
  config.dataset.eval_clips = 5
  config.dataset.eval_turns = 5

  config.model.num_joints_out = 32
  config.model.num_slnl_blocks = 3
  config.loss.margin = 0.6

  config.train.batch_size = 16
  config.train.num_epochs = 100
  config.train.lr_decay = 0.96
  config.train.log_every_steps = 20
  config.train.eval_every_epochs = 5
  return config
