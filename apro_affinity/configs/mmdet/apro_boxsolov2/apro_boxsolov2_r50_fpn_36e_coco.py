# Official: configs/apro_boxsolov2/box_solov2_coco_r50_fpn_3x.py (COCO AP 32.9 / 55.2 / 33.6).
_base_ = ['../_base_/boxsolov2_r50_fpn_36e_coco.py']

model = dict(mask_head=dict(num_classes=80, kernel_size=3), test_cfg=dict(mask_thr=0.45))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=2000),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
