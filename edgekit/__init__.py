"""edgekit: steel-surface-defect models from papers to line-side cameras."""
__version__ = "0.1.0"
