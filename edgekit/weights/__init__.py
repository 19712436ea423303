"""Weights bundled with edgekit (see README.md here for provenance and licence)."""
