# Official: configs/apro_boxsolov2/box_solov2_voc_r50_fpn_3x.py (VOC AP 38.4 / 65.4 / 39.8).
_base_ = ['../_base_/boxsolov2_r50_fpn_36e_voc.py']

model = dict(mask_head=dict(num_classes=20, kernel_size=5), test_cfg=dict(mask_thr=0.7))
optim_wrapper = dict(optimizer=dict(lr=5e-5))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=2000),
    dict(type='MultiStepLR', begin=0, end=36, by_epoch=True, milestones=[27, 33], gamma=0.1),
]
