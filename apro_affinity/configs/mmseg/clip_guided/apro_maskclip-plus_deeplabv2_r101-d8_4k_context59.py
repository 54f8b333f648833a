# Pascal Context-59, 480 crops, 4k iterations. MaskCLIP+ ViT-B/16: 31.1 mIoU; best APro listed by an aggregator:
# 32.6 (teacher unknown, spec §6.3).
_base_ = ['../_base_/maskclip-plus_deeplabv2_r101-d8.py', 'mmseg::_base_/datasets/pascal_context_59.py']

crop_size = (480, 480)
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=59),
             clip_teacher=dict(class_names=dict(dataset='PascalContextDataset59')))
annotation_free_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(520, 520), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=annotation_free_pipeline))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=4000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=4000, val_interval=2000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2000))
