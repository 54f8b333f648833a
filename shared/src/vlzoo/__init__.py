"""vlzoo: the thin core shared by the five paper reimplementations of this monorepo.

Subpackages (import them explicitly; nothing heavy is imported here):

- ``vlzoo.config``    typed dataclass configs, YAML deltas, dotted CLI overrides
- ``vlzoo.run``       seeding, run folders, atomic checkpoints, exact resume, metrics log + plots
- ``vlzoo.paths``     the cache folder and clear "file missing" errors for local-only weights/data
- ``vlzoo.clip``      open_clip / HF CLIP towers with multi-level feature taps and label-embedding cache
- ``vlzoo.data``      validating readers for COCO, VOC label PNGs, LLaVA JSON, QKS multi-label CSV, images
- ``vlzoo.metrics``   vectorised mAP, F1@K, mIoU, COCO AP, VQA accuracy
- ``vlzoo.ops``       kernels (C++/CUDA) with PyTorch references
- ``vlzoo.toyworld``  the synthetic toy world and its tiny CLIPs
- ``vlzoo.mllm``      LLaVA-style MLLM scaffolding on transformers' LLaVA classes

Paper packages import ``vlzoo``; ``vlzoo`` never imports a paper package (enforced by a test).
"""

__version__ = "0.1.0"
