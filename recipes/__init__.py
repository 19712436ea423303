"""Recipe YAML files, installed as package data (edgekit._recipes)."""
