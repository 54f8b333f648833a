# CLIP-guided (annotation-free) toy-world segmentation: MaskCLIP+ pseudo labels from vlzoo's tiny CLIP ViT
# teacher (weights from $APRO_TOY_CLIP, e.g. the toy CLIP pretrained by `make toyclip`; unset = 'random', a
# random init that only exercises the code path), DeepLabv2 student, APro on the rest.
_base_ = ['./apro_fcn_r18-d8_toy-scribble.py']

model = dict(
    type='MaskClipPlusEncoderDecoder',
    clip_teacher=dict(model='vlzoo-tiny-vit', weights='{{$APRO_TOY_CLIP:random}}',
                      class_names=dict(dataset='ToyWorldSegDataset'), templates='photo'),
    decode_head=dict(_delete_=True, type='AProDeepLabV2Head', in_channels=128, in_index=3, channels=128,
                     dilations=(1, 2, 3, 4), dropout_ratio=0.1, num_classes=17, align_corners=False,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0,
                                      avg_non_ignore=True),
                     affinity_loss=dict(type='AProAffinityLoss', loss_weight_global=0.4, loss_weight_local=0.4,
                                        apply_to='all')))
train_pipeline = [dict(type='LoadImageFromFile'), dict(type='RandomFlip', prob=0.5), dict(type='PackSegInputs')]
train_dataloader = dict(dataset=dict(data_prefix=dict(img_path='train/images', seg_map_path=''),
                                     pipeline=train_pipeline))
