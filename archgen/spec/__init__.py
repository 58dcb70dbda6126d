"""The YAML format: pydantic models and loading."""

from archgen.spec.load import compose_config, load_spec, validate
from archgen.spec.model import ArchSpec

__all__ = ["ArchSpec", "compose_config", "load_spec", "validate"]
