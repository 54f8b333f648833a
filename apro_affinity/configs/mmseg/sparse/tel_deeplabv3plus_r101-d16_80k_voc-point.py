# The TEL baseline with clicks.
_base_ = ['./tel_deeplabv3plus_r101-d16_80k_voc-scribble.py']
train_dataloader = dict(dataset=dict(data_prefix=dict(seg_map_path='points')))
