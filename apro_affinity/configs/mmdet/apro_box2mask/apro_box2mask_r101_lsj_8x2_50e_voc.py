# Official: configs/apro_box2mask/box2mask_r101_lsj_8x2_50e_voc.py (VOC AP 43.6 / 72.0 / 45.7).
_base_ = ['./apro_box2mask_r50_lsj_8x2_50e_voc.py']

# https://download.pytorch.org/models/resnet101-b641f3a9.pth, downloaded by you
pretrained = 'data/pretrained/resnet101-b641f3a9.pth'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
             panoptic_head=dict(zeta_gl=0.03))
