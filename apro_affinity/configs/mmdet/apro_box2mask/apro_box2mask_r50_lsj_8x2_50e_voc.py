# Official: configs/apro_box2mask/box2mask_r50_lsj_8x2_50e_voc.py (VOC AP 42.3 / 70.6 / 44.5).
_base_ = ['../_base_/box2mask_r50_lsj_50e.py']

num_things_classes = 20
model = dict(panoptic_head=dict(num_things_classes=num_things_classes, zeta_gl=0.02, zeta_gh=0.03,
                                loss_cls=dict(class_weight=[1.0] * num_things_classes + [0.1])),
             panoptic_fusion_head=dict(num_things_classes=num_things_classes))

data_root = 'data/VOC/'
metainfo = dict(classes=('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
                         'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
                         'train', 'tvmonitor'))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/voc_2012_train.json',
                                     data_prefix=dict(img='train/')))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo, ann_file='annotations/voc_2012_val.json',
                                   data_prefix=dict(img='val/')))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/voc_2012_val.json', metric=['bbox', 'segm'])
test_evaluator = val_evaluator

# "50e" on VOC: 33,065 iterations, steps at 29,390 and 31,840, lr 1e-4, no warm-up.
optim_wrapper = dict(optimizer=dict(lr=1e-4))
max_iters = 33065
param_scheduler = dict(end=max_iters, milestones=[29390, 31840])
interval = 2000
dynamic_intervals = [(max_iters // interval * interval + 1, max_iters)]
train_cfg = dict(max_iters=max_iters, val_interval=interval, dynamic_intervals=dynamic_intervals)
default_hooks = dict(checkpoint=dict(interval=interval))
