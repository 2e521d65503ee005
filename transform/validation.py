"""Compiled validators for the JSON Schemas in ``schemas/``, the single source of input shapes.

fastjsonschema compiles each schema to Python once per container; per-record it is ~17x faster
than ``jsonschema``, which the tests use as the oracle that the two agree.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastjsonschema

SCHEMA_DIR = Path(__file__).parent / "schemas"

Check = Callable[[object], str | None]


@functools.cache
def _common_definitions() -> dict[str, Any]:
    with (SCHEMA_DIR / "common.json").open(encoding="utf-8") as handle:
        definitions: dict[str, Any] = json.load(handle)["definitions"]
    return definitions


@functools.cache
def load_schema(name: str) -> dict[str, Any]:
    """The named schema with the shared definitions merged in (its own take precedence)."""
    with (SCHEMA_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    schema["definitions"] = {**_common_definitions(), **schema.get("definitions", {})}
    return schema


def schema_for(name: str, definition: str | None = None) -> dict[str, Any]:
    """The whole schema, or one of its definitions as a standalone schema."""
    schema = load_schema(name)
    if definition is None:
        return schema
    if definition not in schema["definitions"]:
        raise KeyError(f"schema {name!r} has no definition {definition!r}")
    return {"$ref": f"#/definitions/{definition}", "definitions": schema["definitions"]}


@functools.cache
def checker(name: str, definition: str | None = None) -> Check:
    """A function returning None for a valid document, else the first error as text."""
    validate = fastjsonschema.compile(schema_for(name, definition))

    def check(document: object) -> str | None:
        try:
            validate(document)
        except fastjsonschema.JsonSchemaValueException as error:
            return str(error.message)
        return None

    return check
