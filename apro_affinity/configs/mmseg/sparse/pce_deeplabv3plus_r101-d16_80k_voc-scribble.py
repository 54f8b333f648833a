# Partial cross-entropy only (no pairwise term).
_base_ = ['../_base_/deeplabv3plus_r101-d16_80k_voc-sparse.py']
model = dict(decode_head=dict(affinity_loss=None))
