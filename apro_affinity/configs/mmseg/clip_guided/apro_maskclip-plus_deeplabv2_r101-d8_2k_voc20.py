# PASCAL VOC 2012 aug, 20 classes without background, 512 crops, 2k iterations. MaskCLIP+ (ViT-B/16 teacher
# is not listed for VOC-20; R-50: 58.4 / 58.0, R-50x16: 67.5); APro: unknown (spec §6.3).
_base_ = ['../_base_/maskclip-plus_deeplabv2_r101-d8.py', 'mmseg::_base_/datasets/pascal_voc12_aug.py']

voc20 = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog',
         'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train', 'tvmonitor')
crop_size = (512, 512)
annotation_free_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0), keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
model = dict(data_preprocessor=dict(size=crop_size), decode_head=dict(num_classes=20),
             clip_teacher=dict(class_names=dict(dataset='PascalVOCDataset', exclude=['background'])))
train_dataloader = dict(dataset=dict(datasets=[
    dict(type='PascalVOCDataset', data_root='data/VOCdevkit/VOC2012', metainfo=dict(classes=voc20),
         data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClass'),
         ann_file='ImageSets/Segmentation/train.txt', pipeline=annotation_free_pipeline),
    dict(type='PascalVOCDataset', data_root='data/VOCdevkit/VOC2012', metainfo=dict(classes=voc20),
         data_prefix=dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug'),
         ann_file='ImageSets/Segmentation/aug.txt', pipeline=annotation_free_pipeline),
]))
val_dataloader = dict(dataset=dict(metainfo=dict(classes=voc20)))  # background -> 255 (ignored)
test_dataloader = val_dataloader
param_scheduler = [dict(type='PolyLR', eta_min=1e-4, power=0.9, begin=0, end=2000, by_epoch=False)]
train_cfg = dict(type='IterBasedTrainLoop', max_iters=2000, val_interval=1000)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000))
