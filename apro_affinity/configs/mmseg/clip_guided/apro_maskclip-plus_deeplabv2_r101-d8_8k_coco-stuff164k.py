# COCO-Stuff 164k, 171 classes, 512 crops, 8k iterations. MaskCLIP+ ViT-B/16: 18.0 mIoU; best APro listed by an
# aggregator: 19.5 (teacher unknown, spec §6.3).
_base_ = ['../_base_/maskclip-plus_deeplabv2_r101-d8.py', 'mmseg::_base_/datasets/coco-stuff164k.py']

crop_size = (512, 512)
annotation_free_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=171), clip_teacher=dict(class_names=dict(dataset='COCOStuffDataset')))
train_dataloader = dict(dataset=dict(pipeline=annotation_free_pipeline))
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=8000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=8000, val_interval=4000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=4000))
