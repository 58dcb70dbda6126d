"""The YAML format: pydantic models and loading."""

from archgen.config.load import compose_config, load_spec, validate
from archgen.config.model import ArchSpec

__all__ = ["ArchSpec", "compose_config", "load_spec", "validate"]
