# Official: configs/apro_box2mask/box2mask_r101_lsj_8x2_50e_coco.py (COCO AP 38.0 / 63.6 / 38.7).
_base_ = ['./apro_box2mask_r50_lsj_8x2_50e_coco.py']

# https://download.pytorch.org/models/resnet101-b641f3a9.pth, downloaded by you
pretrained = 'data/pretrained/resnet101-b641f3a9.pth'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
optim_wrapper = dict(optimizer=dict(lr=1e-4))
