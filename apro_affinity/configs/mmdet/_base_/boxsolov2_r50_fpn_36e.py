# SOLOv2 + APro under box supervision (spec §5.1), mmdet 3.x. Mirrors the official
# configs/apro_boxsolov2/box_solov2_*_fpn_3x.py; the leaf configs set the dataset and the per-dataset values.
_base_ = ['mmdet::solov2/solov2_r50_fpn_ms-3x_coco.py']

custom_imports = dict(imports=['apro_affinity.mmdet'], allow_failed_imports=False)

# ImageNet ResNet-50 from torchvision, downloaded by you (nothing is fetched at run time):
# https://download.pytorch.org/models/resnet50-11ad3fa6.pth
pretrained = 'data/pretrained/resnet50-11ad3fa6.pth'

model = dict(
    type='BoxSOLOv2',
    backbone=dict(frozen_stages=1, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    mask_head=dict(
        type='BoxSOLOv2Head',
        num_classes=20,
        feat_channels=256,  # the official head's seg_feat_channels
        mask_feature_head=dict(feat_channels=256, out_channels=256),
        zeta_gl=0.01,
        zeta_gh=0.07,
        kernel_size=5,
        zeta_s=0.15,
        lp_iterations=20,
        loss_global_weight=2.0,
        loss_local_weight=1.0,
        loss_mask=dict(_delete_=True, type='BoxProjectionLoss', loss_weight=3.0)),
    test_cfg=dict(nms_pre=500, score_thr=0.05, mask_thr=0.7, filter_thr=0.025, kernel='gaussian', sigma=2.0,
                  max_per_img=100))

# AdamW, weight decay 0.1 (none on norms), grad-clip 1.0, linear warm-up over 2000 iterations, 36 epochs.
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=5e-5, weight_decay=0.1),
    paramwise_cfg=dict(norm_decay_mult=0.0, bypass_duplicate=True),
    clip_grad=dict(max_norm=1.0, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=2000),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
train_cfg = dict(max_epochs=36)
default_hooks = dict(checkpoint=dict(interval=4))
