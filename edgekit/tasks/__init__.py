"""Task-specific post-processing and metrics (classification now; detection and segmentation next)."""
