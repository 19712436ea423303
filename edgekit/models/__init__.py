"""Architectures of the paper recipes. Importing this package registers them all."""
from edgekit.models.registry import create_model, list_models, model_meta, register_model
from edgekit.models import lsa_net, raf_ssd, segdec_net, squeezenet_mrf  # noqa: F401  (registers)

__all__ = ["create_model", "list_models", "model_meta", "register_model"]
