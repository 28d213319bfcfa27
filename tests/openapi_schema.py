"""Validate JSON against OpenAI's published OpenAPI schema (tests/specs/openai-openapi.json).

    from openapi_schema import validate
    validate("CreateChatCompletionResponse", body)           # raises jsonschema.ValidationError
    validate("CreateChatCompletionStreamResponse", chunk)

The spec marks nulls OpenAPI-3.0 style (`nullable: true`); those become JSON Schema
`anyOf [..., {"type": "null"}]`. `$ref`s resolve inside the spec's own `components`.
"""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

__all__ = ["SPEC_PATH", "to_json_schema", "validate", "validator"]

SPEC_PATH = Path(
    os.environ.get("FAILOVER_OPENAPI_SPEC")
    or Path(__file__).resolve().parent / "specs" / "openai-openapi.json"
)


def to_json_schema(node: Any) -> Any:
    """A copy of an OpenAPI schema tree with every `nullable: true` made a JSON Schema null."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@cache
def _components() -> dict[str, Any]:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    converted: dict[str, Any] = to_json_schema(spec["components"])
    return converted


@cache
def validator(component: str) -> Draft202012Validator:
    """A validator for `#/components/schemas/<component>`."""
    components = _components()
    if component not in components["schemas"]:
        raise KeyError(f"no schema {component!r} in {SPEC_PATH.name}")
    root = {"$ref": f"#/components/schemas/{component}", "components": components}
    return Draft202012Validator(root)


def validate(component: str, instance: Any) -> None:
    """Raise `jsonschema.ValidationError` (the most relevant one) unless `instance` fits."""
    validator(component).validate(instance)
