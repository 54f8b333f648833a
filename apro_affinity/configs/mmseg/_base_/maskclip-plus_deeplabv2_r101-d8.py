# CLIP-guided (annotation-free) semantic segmentation (spec §5.3): MaskCLIP+ pseudo labels from a frozen CLIP
# ViT teacher are the target of the cross-entropy, and APro's GP + LP terms (on every pixel: the teacher labels
# all of them) regularise those noisy labels. MaskCLIP+ protocol:
# DeepLabv2 student (ASPP-L, rates 6/12/18/24) on a dilated ResNet (the file names of MaskCLIP+ say R-101-d8 but
# its shared base builds ResNetV1c-50; this config takes R-101-d8, as the names say), SGD lr 0.01, momentum 0.9,
# weight decay 5e-4, poly (power 0.9, min lr 1e-4), 4 images per GPU, whole-image test. The leaf configs hold
# the training pipeline: no ground truth is loaded (the teacher labels every image), so MaskCLIP+'s crop with
# cat_max_ratio 0.75 (which needs the ground truth) is a plain random crop here. APro's own lambda and
# zetas for this setting are unknown: TEL's lambda 0.4 and APro's released SOLOv2 zetas.
_base_ = ['mmseg::_base_/default_runtime.py']

custom_imports = dict(imports=['apro_affinity.mmseg'], allow_failed_imports=False)

pretrained = 'data/pretrained/resnet101_v1c-e67eebb6.pth'  # open-mmlab://resnet101_v1c, downloaded by you
# open_clip ViT-B-16 with OpenAI's weights (the HF repo timm/vit_base_patch16_clip_224.openai, file
# open_clip_pytorch_model.bin), downloaded by you; OpenAI's weights need QuickGELU.
clip_weights = 'data/pretrained/vit_base_patch16_clip_224.openai/open_clip_pytorch_model.bin'
norm_cfg = dict(type='SyncBN', requires_grad=True)
num_classes = 20
data_preprocessor = dict(type='SegDataPreProcessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                         bgr_to_rgb=True, pad_val=0, seg_pad_val=255, size=(512, 512))
model = dict(
    type='MaskClipPlusEncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=pretrained,
    clip_teacher=dict(model='ViT-B-16', weights=clip_weights, quick_gelu=True, templates='openai_imagenet',
                      conf_thresh=0.0, pd_thresh=0.0),  # the leaf configs add class_names
    backbone=dict(type='ResNetV1c', depth=101, num_stages=4, out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
                  strides=(1, 2, 1, 1), norm_cfg=norm_cfg, norm_eval=False, style='pytorch', contract_dilation=True),
    decode_head=dict(
        type='AProDeepLabV2Head',
        in_channels=2048,
        in_index=3,
        channels=2048,
        dilations=(6, 12, 18, 24),
        dropout_ratio=0.1,
        num_classes=num_classes,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0, avg_non_ignore=True),
        affinity_loss=dict(type='AProAffinityLoss', loss_weight_global=0.4, loss_weight_local=0.4, zeta_gl=0.01,
                           zeta_gh=0.07, kernel_size=5, zeta_s=0.15, iterations=20, apply_to='all')),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

optim_wrapper = dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=5e-4),
                     clip_grad=None)
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=1000, max_keep_ckpts=3),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
