# Mask2Former + APro under box supervision ("Box2Mask" in the official code, spec §5.1), mmdet 3.x.
# Mirrors configs/apro_box2mask/box2mask_r50_lsj_8x2_50e_*.py; leaf configs set the dataset and schedule.
_base_ = ['mmdet::mask2former/mask2former_r50_8xb2-lsj-50e_coco.py']

custom_imports = dict(imports=['apro_affinity.mmdet'], allow_failed_imports=False)

# https://download.pytorch.org/models/resnet50-11ad3fa6.pth, downloaded by you
pretrained = 'data/pretrained/resnet50-11ad3fa6.pth'
image_size = (1024, 1024)
num_things_classes = 80

model = dict(
    type='Box2Mask',
    backbone=dict(init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(
        type='Box2MaskHead',
        num_things_classes=num_things_classes,
        num_stuff_classes=0,
        num_queries=100,
        zeta_gl=0.03,
        zeta_gh=0.03,
        kernel_size=5,
        zeta_s=0.15,
        lp_iterations=20,
        global_size=(96, 96),
        loss_box=dict(type='BoxProjectionLoss', loss_weight=5.0),
        loss_global_weight=1.0,
        loss_local_weight=1.0,
        loss_cls=dict(class_weight=[1.0] * num_things_classes + [0.1])),
    panoptic_fusion_head=dict(num_things_classes=num_things_classes, num_stuff_classes=0),
    train_cfg=dict(
        assigner=dict(
            type='HungarianAssigner',
            match_costs=[
                dict(type='ClassificationCost', weight=2.0),
                dict(type='BoxMatchingCost', weight=5.0, pred_act=True, eps=1.0),
            ]),
        sampler=dict(type='MaskPseudoSampler')),
    test_cfg=dict(panoptic_on=False, semantic_on=False, instance_on=True, max_per_image=100, iou_thr=0.8,
                  filter_low_score=True))

# Large-scale jittering on boxes only: GenerateBoxMask right after the annotations, so flip, resize and crop move
# the box masks with the image (the official pipeline order).
train_pipeline = [
    dict(type='LoadImageFromFile', to_float32=True, backend_args=None),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=False),
    dict(type='GenerateBoxMask'),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0), resize_type='Resize', keep_ratio=True),
    dict(type='RandomCrop', crop_size=image_size, crop_type='absolute', recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-5, 1e-5), by_mask=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))  # 4 images per GPU, as released
