"""TaI-Adapter: text-as-image adapter for multi-label classification, trained on text only.

Not implemented yet: this package holds the layout only (spec: ``multilabel.md`` part B).
"""
