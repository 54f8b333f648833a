# Mask2Former + APro ("Box2Mask") on the vlzoo toy world, small enough for a CPU: ResNet-18 at 1/4 width,
# 1 pixel-decoder layer, 2 decoder layers, 10 queries, 96 px large-scale jittering.
# The toy world lives at $APRO_TOY_WORLD (default data/toyworld/); see apro_boxsolov2_r18_fpn_toy.py.
_base_ = ['../_base_/box2mask_r50_lsj_50e.py']

data_root = '{{$APRO_TOY_WORLD:data/toyworld/}}'
image_size = (96, 96)
num_things_classes = 16
embed = 32

model = dict(
    data_preprocessor=dict(batch_augments=[dict(type='BatchFixedSizePad', size=image_size, img_pad_value=0,
                                                pad_mask=True, mask_pad_value=0, pad_seg=False)]),
    backbone=dict(depth=18, base_channels=16, init_cfg=None),
    panoptic_head=dict(
        in_channels=[16, 32, 64, 128],
        feat_channels=embed,
        out_channels=embed,
        num_things_classes=num_things_classes,
        num_queries=10,
        pixel_decoder=dict(
            norm_cfg=dict(type='GN', num_groups=8),
            encoder=dict(num_layers=1, layer_cfg=dict(self_attn_cfg=dict(embed_dims=embed, num_heads=4),
                                                      ffn_cfg=dict(embed_dims=embed, feedforward_channels=64))),
            positional_encoding=dict(num_feats=embed // 2)),
        positional_encoding=dict(num_feats=embed // 2),
        transformer_decoder=dict(
            num_layers=2,
            layer_cfg=dict(self_attn_cfg=dict(embed_dims=embed, num_heads=4),
                           cross_attn_cfg=dict(embed_dims=embed, num_heads=4),
                           ffn_cfg=dict(embed_dims=embed, feedforward_channels=64))),
        loss_cls=dict(class_weight=[1.0] * num_things_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes),
    test_cfg=dict(max_per_image=20))

train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(type='GenerateBoxMask'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.5, 1.5), resize_type='Resize', keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True),
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

optim_wrapper = dict(optimizer=dict(lr=1e-3), clip_grad=dict(max_norm=1.0))
max_iters = 2000
param_scheduler = dict(end=max_iters, milestones=[1500, 1800])
train_cfg = dict(max_iters=max_iters, val_interval=500, dynamic_intervals=None)
default_hooks = dict(logger=dict(interval=20), checkpoint=dict(interval=500, max_keep_ckpts=2))
env_cfg = dict(dist_cfg=dict(backend='gloo'))
