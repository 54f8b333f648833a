# The TEL baseline (Liang et al., CVPR 2022) in the same plugin: tree filter on the [0, 1] image (sigma 0.02),
# then on a learned 256-d embedding of the decoder feature, weight 0.4, not stop-gradient.
_base_ = ['../_base_/deeplabv3plus_r101-d16_80k_voc-sparse.py']
model = dict(decode_head=dict(affinity_loss=dict(_delete_=True, type='TreeEnergyLoss', loss_weight=0.4, sigma=0.02,
                                                 in_channels=512, embed_channels=256)))
train_dataloader = dict(dataset=dict(data_prefix=dict(seg_map_path='scribbles')))
