"""The fast path's typed structures against the JSON Schemas, the single source of input
shapes: field by field, every schema constraint is restated, and any difference is one the
structures' docstring owns (stricter, never looser)."""

from __future__ import annotations

from typing import Any

import msgspec
import msgspec.inspect as mi
import pytest

from transform.fast import shapes
from transform.fast.metrics_export import THING_NAME
from transform.validation import load_schema

Doc = dict[str, Any]


def resolved(schema: Doc, definitions: Doc) -> Doc:
    """A property's schema with its $ref (and a single allOf) followed."""
    while True:
        if "$ref" in schema:
            schema = {**definitions[schema["$ref"].rpartition("/")[2]], **schema}
            del schema["$ref"]
        else:
            return schema


def assert_in_step(info: mi.Type, schema: Doc, definitions: Doc, where: str) -> None:
    schema = resolved(schema, definitions)
    kind = schema.get("type")
    if "enum" in schema:
        assert isinstance(info, mi.LiteralType), where
        assert set(info.values) == set(schema["enum"]), where
    elif kind == "string":
        assert isinstance(info, mi.StrType), where
        assert_string(info, schema, where)
    elif kind == ["number", "string"]:  # timeValue
        assert isinstance(info, mi.UnionType), where
        assert {type(t) for t in info.types} == {mi.IntType, mi.FloatType, mi.StrType}, where
        for member in info.types:
            if isinstance(member, mi.IntType | mi.FloatType):
                assert_bounds(member, {"minimum": 0}, where)  # below 0 is no plausible time
    elif kind == "integer":
        assert isinstance(info, mi.IntType), where
        assert_bounds(info, schema, where)
    elif kind == "number":
        assert isinstance(info, mi.UnionType), where
        assert {type(t) for t in info.types} == {mi.IntType, mi.FloatType}, where
        for member in info.types:
            assert isinstance(member, mi.IntType | mi.FloatType)
            assert_bounds(member, schema, where)
    elif kind == "array":
        assert isinstance(info, mi.ListType), where
        assert_in_step(info.item_type, schema.get("items", {}), definitions, f"{where}[]")
    elif kind == "object":
        assert isinstance(info, mi.StructType), where
        assert_struct(info, schema, definitions, where)
    else:
        pytest.fail(f"{where}: no rule for {schema}")


def assert_string(info: mi.StrType, schema: Doc, where: str) -> None:
    """The schema's lengths, and its pattern anchored at the very end ("$" lets "x\\n" by)."""
    pattern = schema.get("pattern")
    if pattern is not None and info.pattern is None:
        # thingName, {1,128}: checked as lengths, the characters by THING_NAME
        assert pattern == "^" + THING_NAME.pattern + "$", where
        assert (info.min_length, info.max_length) == (1, 128), where
        return
    assert info.pattern == (None if pattern is None else pattern.removesuffix("$") + r"\Z"), where
    assert (info.min_length, info.max_length) == (
        schema.get("minLength"),
        schema.get("maxLength"),
    ), where


def assert_bounds(info: mi.IntType | mi.FloatType, schema: Doc, where: str) -> None:
    """The schema's bounds exactly; a bound the schema lacks is the orjson-exact range."""
    low = info.ge if info.ge is not None else info.gt
    high = info.le if info.le is not None else info.lt
    if "minimum" in schema:
        assert info.ge == schema["minimum"], where
    else:
        assert low in (shapes.INT_MIN, -shapes.FLOAT_BOUND), where
    if "maximum" in schema:
        assert info.le == schema["maximum"], where
    else:
        assert high in (shapes.INT_MAX, shapes.FLOAT_BOUND), where


def assert_struct(info: mi.StructType, schema: Doc, definitions: Doc, where: str) -> None:
    assert info.forbid_unknown_fields, where  # the schema's extras go to the reference path
    fields = {field.encode_name: field for field in info.fields}
    properties = schema.get("properties", {})
    assert set(fields) == set(properties), where
    assert {name for name, field in fields.items() if field.required} == set(
        schema.get("required", [])
    ), where
    for name, field in fields.items():
        assert_in_step(field.type, properties[name], definitions, f"{where}.{name}")


def merged(name: str, definition: str | None = None) -> tuple[Doc, Doc]:
    """A schema (or one definition) with its allOf envelope and item refinements merged."""
    schema = load_schema(name)
    definitions = schema["definitions"]
    if definition is not None:
        return definitions[definition], definitions
    whole = {**definitions["envelope"]}
    whole["properties"] = {**whole["properties"]}
    for key, refinement in schema.get("properties", {}).items():
        whole["properties"][key] = {**whole["properties"][key], **refinement}
    return whole, definitions


@pytest.mark.parametrize(
    ("struct", "schema"),
    [
        (shapes.MetricsExport, ("metrics_export", None)),
        (shapes.Metric, ("metrics_export", "metric")),
        (shapes.MetricValue, ("metrics_export", "metricValue")),
        (shapes.AuditNotification, ("audit_notification", None)),
        (shapes.CheckDetail, ("audit_notification", "checkDetail")),
    ],
    ids=["export", "metric", "value", "audit_notification", "check_detail"],
)
def test_the_structures_restate_the_schemas(
    struct: type[msgspec.Struct], schema: tuple[str, str | None]
) -> None:
    document, definitions = merged(*schema)
    info = mi.type_info(struct)
    assert isinstance(info, mi.StructType)
    assert_struct(info, document, definitions, struct.__name__)


def test_the_rule_envelope_is_the_detect_export_route_of_its_schema() -> None:
    """thing_name and received_at belong to the device-report route: the schema's else-branch
    forbids them here, so the structure has no such fields (and forbids unknown ones)."""
    schema = load_schema("rule_envelope")
    info = mi.type_info(shapes.RuleEnvelope)
    assert isinstance(info, mi.StructType)
    detect_only = {
        **schema,
        "properties": {
            "route": {"enum": ["detect-export"]},
            "payload": schema["properties"]["payload"],
        },
    }
    assert "detect-export" in schema["properties"]["route"]["enum"]
    assert schema["else"] == {
        "not": {"anyOf": [{"required": ["thing_name"]}, {"required": ["received_at"]}]}
    }
    assert_struct(info, detect_only, schema["definitions"], "RuleEnvelope")
