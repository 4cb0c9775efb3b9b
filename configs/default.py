"""Paper defaults shared by every config (NTU RGB+D 60 cross-subject, Sec. 4.1 of the paper).

Other configs start from `get_config()` here and override what differs.
"""

import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0

  # Data. `name` is a TFDS builder/config name (see slnl_jax/data/builders.py).
  config.dataset = ml_collections.ConfigDict()
  config.dataset.name = "ntu_rgbd60/xsub"
  config.dataset.data_dir = "~/tensorflow_datasets"  # where built TFDS datasets live
  config.dataset.manual_dir = ""  # the user's unpacked raw download, for building
  config.dataset.num_classes = 60
  config.dataset.num_joints = 25
  config.dataset.num_persons = 2
  config.dataset.num_channels = 3
  config.dataset.num_frames = 64  # T after temporal resize
  config.dataset.train_crop_min = 0.5  # random crop ratio ~ U[train_crop_min, 1]
  config.dataset.eval_crop = 0.95  # centred crop ratio at evaluation
  # Evaluation views per clip, class probabilities averaged (test-time augmentation, like PYSKL's num_clips):
  # eval_clips 1 = the crop above (the paper's), S > 1 = S centred crops with ratios evenly spaced over
  # [train_crop_min, 1]; eval_turns 1 = no turn, R > 1 = each crop also turned about the vertical axis by R angles
  # evenly spaced over [-train_rotation_deg, train_rotation_deg]. Each eval step runs eval_batch_size x S x R clips.
  config.dataset.eval_clips = 1
  config.dataset.eval_turns = 1
  # eval_offsets 1 = each crop centred, O > 1 = each crop shorter than the clip taken at O starts evenly spaced
  # from the clip's start to its end instead (up to O x S x R views).
  config.dataset.eval_offsets = 1
  # A clip's score: "concat" = the concatenated feature's head (Eq. 17, the paper's), "all" = the mean probability
  # of the position, velocity and concat heads (each trained as a classifier by the multi-task loss, Eq. 18).
  config.dataset.eval_heads = "concat"
  config.dataset.center_channels = 0  # subtract each clip's mean position from this many leading channels (0: off)
  # View normalisation after the crop, at training and evaluation (xyz data only; off: the paper's setting):
  config.dataset.center_joint = -1  # subtract this joint's xyz in the first frame (-1: off)
  config.dataset.minmax_normalize = False  # each of x, y, z of a clip mapped onto [-1, 1]
  config.dataset.minmax_isotropic = False  # min-max with one scale for all three axes (the largest extent's)
  # (l1, r1, l2, r2, ...): the cropped clip turned about the vertical axis so that the first person's summed
  # left -> right vectors (e.g. hips and shoulders) point along +x, before any random or evaluation turn (() = off).
  config.dataset.align_joints = ()
  # Training clips' random view, xyz data only (0: off, the paper's setting): turned about the vertical axis by
  # U[-deg, deg], tilted about the x axis by U[-deg, deg], scaled by U[1 - range, 1 + range], sheared by a matrix
  # whose six off-diagonal entries are U[-shear, shear] (AimCLR's and CrosSCLR's shear).
  config.dataset.train_rotation_deg = 0.0
  config.dataset.train_tilt_deg = 0.0
  config.dataset.train_scale_range = 0.0
  config.dataset.train_shear = 0.0
  # (l1, r1, l2, r2, ...): every left joint's right twin; each training clip mirrored left <-> right (x reflected,
  # the twins swapped) with probability 1/2, PYSKL's `Flip` (() = off).
  config.dataset.train_mirror_pairs = ()
  config.dataset.shuffle_buffer = 4096

  # Model (Sec. 3, Fig. 1).
  config.model = ml_collections.ConfigDict()
  config.model.num_joints_out = 64  # N' of the skeleton transformer
  config.model.num_systems = 10  # K oblique coordinate systems
  # False (an ablation, not the paper): the V input joints' coordinates go straight to frequency attention.
  config.model.transform_network = True
  config.model.frequency_attention = "residual"  # none | amplitude | shared | dependent | residual
  config.model.fa_reduction = 16  # lambda, the FC bottleneck ratio of frequency attention
  config.model.channels = (64, 64, 128, 128, 256, 256)
  config.model.kernel_sizes = (3, 3, 3, 3, 3, 3)
  config.model.num_slnl_blocks = 5  # M1; the remaining len(channels) - M1 blocks are local (M2)
  config.model.pool_every = 2  # 2x2 max-pool after every `pool_every` blocks
  # Stages of an SLnL block with a non-local branch (Fig. 3c: all three; fewer for ablations).
  config.model.nonlocal_kinds = ("temporal", "spatial", "spatio_temporal")
  # auto | einsum | dot_product_attention | chunked: the same function. auto picks per platform and kind
  # (benchmarks/README.md): chunked on CPU (NTU batch 32 needs 9 GiB of XLA temporaries instead of 60, and runs
  # fastest), a batched einsum (temporal, spatial) and Pallas flash attention (spatio-temporal) on GPU and TPU.
  config.model.nonlocal_impl = "auto"
  config.model.embed_ratio = 0.5  # non-local embedding channels L = embed_ratio * C
  config.model.dropout_rate = 0.2
  # Local convolutions' kernel gradient: auto (matmul on CPU, xla elsewhere) | matmul (up to 12x faster on CPU,
  # benchmarks/README.md) | xla.
  config.model.conv_kernel_grad = "auto"
  config.model.remat = False  # jax.checkpoint each block to save activation memory
  config.dtype = "float32"  # compute dtype: float32 | bfloat16 (params and loss stay float32)

  # Loss (Sec. 3.4, Eq. 12-18).
  config.loss = ml_collections.ConfigDict()
  config.loss.name = "smfl"  # cross_entropy | focal_loss | smce | smfl
  config.loss.gamma = 2.0
  config.loss.margin = 0.4
  # eps > 0: (1 - eps) x the loss + eps x the mean over classes of -log p_k, i.e. for CE the cross-entropy against
  # labels smoothed towards uniform (InfoGCN trains with 0.1); the evaluation's reported loss too; 0: the paper's.
  config.loss.label_smoothing = 0.0

  # Optimisation (Sec. 4.1): Adam, L2 5e-4 coupled into the gradient, exponential decay per epoch.
  config.train = ml_collections.ConfigDict()
  config.train.batch_size = 32
  config.train.eval_batch_size = 32
  config.train.num_epochs = 300
  config.train.learning_rate = 1e-3
  config.train.weight_decay = 5e-4
  config.train.lr_decay = 0.98  # per epoch
  config.train.optimizer = "adam"  # the paper's; "sgd": Nesterov momentum, the GCN papers' (CTR-GCN, PYSKL)
  config.train.momentum = 0.9  # sgd only
  config.train.warmup_epochs = 0  # > 0: the learning rate ramps up linearly over these first epochs
  # > 0: evaluate, checkpoint-select and export moving averages of the weights (steps.ema_update); 0: the weights.
  config.train.ema_decay = 0.0
  config.train.mixup_alpha = 0.0  # > 0: mixup with weights ~ Beta(alpha, alpha) (steps.py); 0: off, the paper's
  config.train.log_every_steps = 50
  config.train.checkpoint_every_steps = 1000
  config.train.keep_checkpoints = 3  # the latest k are kept ...
  config.train.keep_best_checkpoints = 1  # ... plus the best by eval top-1
  config.train.eval_every_epochs = 1  # evaluate (and save with the eval metrics) every n epochs
  config.train.steps_per_epoch = -1  # -1: derived from the dataset size
  config.train.max_steps = -1  # stop (with a checkpoint) at this global step; -1: num_epochs epochs
  return config
