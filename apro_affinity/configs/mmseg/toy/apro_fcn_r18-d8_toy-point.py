# Point-supervised (one click per object and some background clicks) toy-world segmentation with APro.
_base_ = ['./apro_fcn_r18-d8_toy-scribble.py']
train_dataloader = dict(dataset=dict(data_prefix=dict(seg_map_path='train/points')))
