# SOLOv2 + APro on the vlzoo toy world, small enough for a CPU: ResNet-18 at 1/4 width, 96 px images.
# The toy world lives at $APRO_TOY_WORLD (default data/toyworld/); make one with
#   python -m vlzoo.toyworld generate --out data/toyworld --n-train 4000 --n-val 500
# Train with mmdet's own tools: python tools/train.py apro_affinity/configs/mmdet/toy/apro_boxsolov2_r18_fpn_toy.py
_base_ = ['../_base_/boxsolov2_r50_fpn_36e.py']

data_root = '{{$APRO_TOY_WORLD:data/toyworld/}}'
image_size = (96, 96)
num_classes = 16

model = dict(
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, norm_cfg=dict(type='BN', requires_grad=True),
                  init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    mask_head=dict(
        num_classes=num_classes,
        in_channels=32,
        feat_channels=32,
        stacked_convs=2,
        strides=[8, 8, 16, 32, 32],
        scale_ranges=((1, 24), (12, 48), (24, 96), (48, 192), (96, 2048)),
        num_grids=[12, 10, 8, 6, 4],
        mask_feature_head=dict(feat_channels=32, out_channels=32),
        kernel_size=5),
    test_cfg=dict(score_thr=0.05, mask_thr=0.5, nms_pre=100, max_per_img=20))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(type='GenerateBoxMask'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ToyWorldInstanceDataset', data_root=data_root, ann_file='train/instances.json',
                 data_prefix=dict(img='train/images/'), filter_cfg=dict(filter_empty_gt=True),
                 pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True,
    batch_size=4,
    num_workers=0,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToyWorldInstanceDataset', data_root=data_root, ann_file='val/instances.json',
                 data_prefix=dict(img='val/images/'), test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric', ann_file=data_root + 'val/instances.json', metric='segm')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=1e-4))
max_iters = 2000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=max_iters, milestones=[1500, 1800], gamma=0.1),
]
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(by_epoch=False, interval=500, max_keep_ckpts=2))
log_processor = dict(by_epoch=False)
env_cfg = dict(dist_cfg=dict(backend='gloo'))
