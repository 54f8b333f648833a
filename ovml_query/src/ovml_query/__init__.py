"""QKS: query-based knowledge sharing for open-vocabulary multi-label classification (Zhu et al., ACM TOMM
2025, arXiv 2401.01181).

Not implemented yet: this package holds the layout only. It will use ``vlzoo.clip`` (frozen ViT-B/16 taps
and the template-ensemble label embeddings), ``vlzoo.data.multilabel`` and ``vlzoo.metrics``.
"""
