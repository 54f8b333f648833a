# Official: configs/apro_boxsolov2/box_solov2_coco_r101_fpn_3x.py (COCO AP 34.3 / 57.0 / 35.3).
_base_ = ['./apro_boxsolov2_r50_fpn_36e_coco.py']

# https://download.pytorch.org/models/resnet101-b641f3a9.pth, downloaded by you
pretrained = 'data/pretrained/resnet101-b641f3a9.pth'
model = dict(backbone=dict(depth=101, init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
             test_cfg=dict(mask_thr=0.55))
