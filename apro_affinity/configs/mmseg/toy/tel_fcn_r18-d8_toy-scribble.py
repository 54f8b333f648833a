# The TEL baseline on the toy world: tree filter on the image (sigma 0.02), then on a learned 16-d embedding.
_base_ = ['./apro_fcn_r18-d8_toy-scribble.py']
model = dict(decode_head=dict(affinity_loss=dict(_delete_=True, type='TreeEnergyLoss', loss_weight=0.4, sigma=0.02,
                                                 in_channels=32, embed_channels=16)))
