# Scribble-supervised semantic segmentation on the vlzoo toy world with APro, small enough for a CPU:
# ResNetV1c-18 at 1/4 width (output stride 8), an FCN head, 96 px images, 17 classes (background + 16 shapes).
# The toy world lives at $APRO_TOY_WORLD (default data/toyworld/); make one with
#   python -m vlzoo.toyworld generate --out data/toyworld --n-train 4000 --n-val 500
# Train with mmseg's own tools: python tools/train.py apro_affinity/configs/mmseg/toy/apro_fcn_r18-d8_toy-scribble.py
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['apro_affinity.mmseg'], allow_failed_imports=False)

data_root = '{{$APRO_TOY_WORLD:data/toyworld/}}'
sparse_labels = 'scribbles'
crop_size = (96, 96)
norm_cfg = dict(type='BN', requires_grad=True)
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size)
model = dict(
    type='AProEncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,
    backbone=dict(type='ResNetV1c', depth=18, stem_channels=16, base_channels=16, num_stages=4,
                  out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1), norm_cfg=norm_cfg,
                  norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(
        type='AProFCNHead',
        in_channels=128,
        in_index=3,
        channels=32,
        num_convs=2,
        concat_input=True,
        dropout_ratio=0.1,
        num_classes=17,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True),
        affinity_loss=dict(type='AProAffinityLoss', loss_weight_global=0.4, loss_weight_local=0.4, zeta_gl=0.01,
                           zeta_gh=0.07, kernel_size=5, zeta_s=0.15, iterations=20)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type='ToyWorldSegDataset', data_root=data_root,
                 data_prefix=dict(img_path='train/images', seg_map_path='train/' + sparse_labels),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='ToyWorldSegDataset', data_root=data_root,
                 data_prefix=dict(img_path='val/images', seg_map_path='val/semantic'), pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=2e-3, weight_decay=1e-4), clip_grad=None)
max_iters = 2000
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=max_iters, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=500)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=500, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(cudnn_benchmark=False, dist_cfg=dict(backend='gloo'))
