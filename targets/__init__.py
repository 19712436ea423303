"""Target YAML files, installed as package data (edgekit._targets)."""
