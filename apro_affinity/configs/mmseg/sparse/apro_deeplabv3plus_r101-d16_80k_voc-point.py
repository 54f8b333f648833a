# DeepLabV3+ R-101 + APro, "What's the point" clicks (background clicks from the scribbles). TEL: 65.4 mIoU.
_base_ = ['../_base_/deeplabv3plus_r101-d16_80k_voc-sparse.py']
train_dataloader = dict(dataset=dict(data_prefix=dict(seg_map_path='points')))
