# Official: configs/apro_box2mask/box2mask_r50_lsj_8x2_50e_coco.py (COCO AP 36.1 / 62.0 / 36.7).
_base_ = ['../_base_/box2mask_r50_lsj_50e.py']

optim_wrapper = dict(optimizer=dict(lr=5e-5))
max_iters = 368750
param_scheduler = dict(end=max_iters, milestones=[327778, 355092])
