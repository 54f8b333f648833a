# Point / scribble-supervised semantic segmentation on PASCAL VOC 2012 aug (spec §5.2), mmseg 1.x.
# APro's semantic code and settings are unreleased: this follows TEL's released protocol (DeepLabV3+ R-101,
# output stride 16, ASPP rates 6/12/18, stride-4 skip; 512 crops, 16 images on 4 GPUs, SyncBN, SGD momentum 0.9,
# weight decay 1e-4, lr 1e-3 for the backbone and x10 for the rest, poly, 80k iterations; flip, resize
# 0.5-2.0, crop, brightness +-10; multi-scale test 0.5-2.0). Leaf configs choose the sparse labels and the loss.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['apro_affinity.mmseg'], allow_failed_imports=False)

# ImageNet ResNet-101 V1c (mmcv's open-mmlab://resnet101_v1c), downloaded by you
pretrained = 'data/pretrained/resnet101_v1c-e67eebb6.pth'
norm_cfg = dict(type='SyncBN', requires_grad=True)  # use BN when training in one process
crop_size = (512, 512)
num_classes = 21
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=crop_size)
model = dict(
    type='AProEncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=pretrained,
    backbone=dict(type='ResNetV1c', depth=101, num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 1, 2),
                  strides=(1, 2, 2, 1), norm_cfg=norm_cfg, norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(
        type='AProDepthwiseSeparableASPPHead',
        in_channels=2048,
        in_index=3,
        channels=512,
        dilations=(1, 6, 12, 18),
        c1_in_channels=256,
        c1_channels=48,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        # partial cross-entropy: the mean over labelled pixels only (255 = unlabelled)
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True),
        affinity_loss=dict(type='AProAffinityLoss', loss_weight_global=0.4, loss_weight_local=0.4, zeta_gl=0.01,
                           zeta_gh=0.07, kernel_size=5, zeta_s=0.15, iterations=20)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

dataset_type = 'VOCSparseDataset'
data_root = 'data/VOCdevkit/VOC2012'
sparse_labels = 'scribbles'  # a folder of label PNGs made by apro_affinity.mmseg.convert_voc_sparse
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion', brightness_delta=10, contrast_range=(1.0, 1.0),
         saturation_range=(1.0, 1.0), hue_delta=0),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations'),
    dict(type='PackSegInputs'),
]
img_ratios = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='TestTimeAug', transforms=[
        [dict(type='Resize', scale_factor=r, keep_ratio=True) for r in img_ratios],
        [dict(type='RandomFlip', prob=0.0, direction='horizontal'),
         dict(type='RandomFlip', prob=1.0, direction='horizontal')],
        [dict(type='LoadAnnotations')], [dict(type='PackSegInputs')]]),
]
train_dataloader = dict(
    batch_size=4,  # x 4 GPUs
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path=sparse_labels),
                 ann_file='ImageSets/Segmentation/train_aug.txt', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root,
                 data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
                 ann_file='ImageSets/Segmentation/val.txt', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

optim_wrapper = dict(type='OptimWrapper',
                     optimizer=dict(type='SGD', lr=1e-3, momentum=0.9, weight_decay=1e-4),
                     paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=10.0)}), clip_grad=None)
param_scheduler = [dict(type='PolyLR', eta_min=0.0, power=0.9, begin=0, end=80000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=80000, val_interval=8000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=8000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
