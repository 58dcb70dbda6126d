"""The JSON Schema of the config format, for editors (yaml-language-server) and tools."""

from __future__ import annotations

import json

from archgen.config.model import ArchSpec

SCHEMA_FILE = "schema/archgen.schema.json"


def schema_json() -> str:
    """The schema as JSON text, stable across runs (kept in the repo as ``schema/archgen.schema.json``)."""
    schema = ArchSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "archgen config"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
