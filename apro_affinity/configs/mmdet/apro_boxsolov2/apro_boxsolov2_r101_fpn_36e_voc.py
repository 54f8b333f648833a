# Official: configs/apro_boxsolov2/box_solov2_voc_r101_fpn_3x.py (VOC AP 40.5 / 67.9 / 42.6).
_base_ = ['./apro_boxsolov2_r50_fpn_36e_voc.py']

# https://download.pytorch.org/models/resnet101-b641f3a9.pth, downloaded by you
pretrained = 'data/pretrained/resnet101-b641f3a9.pth'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)))
