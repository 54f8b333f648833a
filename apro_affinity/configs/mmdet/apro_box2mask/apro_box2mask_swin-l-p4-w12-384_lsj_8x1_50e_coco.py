# Official: configs/apro_box2mask/box2mask_swin-l-p4-w12-384-lsj_8x1_50e_coco.py (COCO AP 41.0 / 68.3 / 41.9)
_base_ = ['./apro_box2mask_swin-t-p4-w7-224_lsj_8x2_50e_coco.py']

# https://github.com/SwinTransformer/storage/releases/download/v1.0.0/swin_large_patch4_window12_384_22k.pth,
# downloaded by you
pretrained = 'data/pretrained/swin_large_patch4_window12_384_22k.pth'
depths = [2, 2, 18, 2]
model = dict(
    backbone=dict(pretrain_img_size=384, embed_dims=192, depths=depths, num_heads=[6, 12, 24, 48], window_size=12,
                  init_cfg=dict(type='Pretrained', checkpoint=pretrained)),
    panoptic_head=dict(num_queries=100, in_channels=[192, 384, 768, 1536], zeta_gl=0.03, zeta_gh=0.03))

# Swin parameter groups (the official and mmdet's Mask2Former Swin configs): backbone lr x 0.1, no decay on
# norms, position tables and query/level embeddings.
backbone_norm_multi = dict(lr_mult=0.1, decay_mult=0.0)
backbone_embed_multi = dict(lr_mult=0.1, decay_mult=0.0)
embed_multi = dict(lr_mult=1.0, decay_mult=0.0)
custom_keys = {
    'backbone': dict(lr_mult=0.1, decay_mult=1.0),
    'backbone.patch_embed.norm': backbone_norm_multi,
    'backbone.norm': backbone_norm_multi,
    'absolute_pos_embed': backbone_embed_multi,
    'relative_position_bias_table': backbone_embed_multi,
    'query_embed': embed_multi,
    'query_feat': embed_multi,
    'level_embed': embed_multi,
}
custom_keys.update({f'backbone.stages.{stage_id}.blocks.{block_id}.norm': backbone_norm_multi
                    for stage_id, num_blocks in enumerate(depths) for block_id in range(num_blocks)})
custom_keys.update({f'backbone.stages.{stage_id}.downsample.norm': backbone_norm_multi
                    for stage_id in range(len(depths) - 1)})
optim_wrapper = dict(optimizer=dict(lr=1e-4), paramwise_cfg=dict(custom_keys=custom_keys, norm_decay_mult=0.0))
