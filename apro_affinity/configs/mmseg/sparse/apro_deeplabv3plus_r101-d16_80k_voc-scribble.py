# DeepLabV3+ R-101 + APro (GP + LP on unlabelled pixels), ScribbleSup scribbles. TEL's released model: 77.6 mIoU;
# APro's number for this setting is not known (spec §6.3).
_base_ = ['../_base_/deeplabv3plus_r101-d16_80k_voc-sparse.py']
train_dataloader = dict(dataset=dict(data_prefix=dict(seg_map_path='scribbles')))
