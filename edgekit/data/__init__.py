"""Datasets: the built-in generator, readers of the real NEU layouts, splits and corruptions."""
