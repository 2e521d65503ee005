"""The input schemas: valid Draft 7, matched by every fixture, and given the same verdicts by
the transform's checker (transform.validation, jsonschema-rs) and by jsonschema, the oracle."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from devtools.samples import TRANSFORM_KINDS, record_bytes
from iot_defender_splunk.simulator.delivery import RULE_ADDED_KEYS, RULE_ROUTES
from tests.strategies import Choices, mutate
from tests.support import SAMPLES_DIR, fixture_id, fixture_paths
from transform.decoders.device_report import _long_names
from transform.validation import SCHEMA_DIR, checker, load_schema, schema_for

SCHEMA_NAMES = sorted(path.stem for path in SCHEMA_DIR.glob("*.json"))
INPUT_SCHEMAS = [name for name in SCHEMA_NAMES if name != "common"]

# (schema name, definition or None for the whole schema)
Target = tuple[str, str | None]


@dataclass(frozen=True)
class Document:
    label: str
    target: Target
    document: Any


def _sns(kind: str, label: str, doc: Any) -> Iterator[Document]:
    """SNS-delivered kinds: the envelope, then the message inside it, as its own kind."""
    if "TopicArn" not in doc:
        yield from KINDS[kind](label, doc)
        return
    yield Document(label, ("sns", None), doc)
    yield from KINDS[kind](f"{label}:Message", json.loads(doc["Message"]))


def _audit_notification(label: str, doc: Any) -> Iterator[Document]:
    yield Document(label, ("audit_notification", None), doc)
    yield Document(label, ("audit_notification", "envelope"), doc)
    for n, detail in enumerate(doc["auditDetails"]):
        yield Document(f"{label}:auditDetails[{n}]", ("audit_notification", "checkDetail"), detail)


def _audit_finding(label: str, doc: Any) -> Iterator[Document]:
    if "findings" not in doc:
        yield Document(label, ("audit_finding", None), doc)
        yield Document(label, ("audit_finding", "finding"), doc)
        return
    yield Document(label, ("audit_finding", "fullPage"), doc)
    yield Document(label, ("audit_finding", "page"), doc)
    for n, finding in enumerate(doc["findings"]):
        yield from _audit_finding(f"{label}:findings[{n}]", finding)


def _device_report(label: str, doc: Any) -> Iterator[Document]:
    # Validated with long names, as the decoder does, and without what the rule adds.
    report = _long_names({k: v for k, v in doc.items() if k not in RULE_ADDED_KEYS})
    yield Document(label, ("device_report", None), report)
    yield Document(label, ("device_report", "report"), report)
    for name, value in report.get("custom_metrics", {}).items():
        entry = {"name": name, "value": value}
        yield Document(f"{label}:{name}", ("device_report", "customMetric"), entry)


def _metrics_export(label: str, doc: Any) -> Iterator[Document]:
    yield Document(label, ("metrics_export", None), doc)
    yield Document(label, ("metrics_export", "envelope"), doc)
    for n, metric in enumerate(doc["metrics"]):
        yield Document(f"{label}:metrics[{n}]", ("metrics_export", "metric"), metric)


def _iot_logs(label: str, doc: Any) -> Iterator[Document]:
    yield Document(label, ("cloudwatch_logs", None), doc)
    for n, log_event in enumerate(doc["logEvents"]):
        try:
            entry = json.loads(log_event["message"])
        except ValueError:
            continue  # the non-JSON message fixture: the decoder reports it as unparsed
        yield Document(f"{label}:logEvents[{n}]", ("iot_log", None), entry)


def _whole(schema: str) -> Callable[[str, Any], Iterator[Document]]:
    def documents(label: str, doc: Any) -> Iterator[Document]:
        yield Document(label, (schema, None), doc)

    return documents


# Fixture folder -> the documents its files hold, each with the schema (or definition) it is
# checked against where the transform checks it.
KINDS: dict[str, Callable[[str, Any], Iterator[Document]]] = {
    "audit_finding": _audit_finding,
    "audit_notification": _audit_notification,
    "cloudwatch_metric_stream": _whole("metric_stream"),
    "device_report": _device_report,
    "iot_logs": _iot_logs,
    "lifecycle": _whole("lifecycle"),
    "metrics_export": _metrics_export,
    "response": _whole("response"),
    "thing": _whole("thing"),
    "violation": _whole("violation"),
}
SNS_KINDS = {"audit_notification", "violation"}


def _rule_envelope(path: Path) -> Iterator[Document]:
    """A rule-fed sample's record as its rule forwards it, checked against the envelope schema."""
    if path.parent.name in RULE_ROUTES and path.suffix == ".json":
        yield Document(fixture_id(path), ("rule_envelope", None), json.loads(record_bytes(path)))


def fixture_documents() -> list[Document]:
    documents: list[Document] = []
    for path in fixture_paths():
        kind = path.parent.name
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ndjson":
            for n, line in enumerate(text.splitlines()):
                documents.extend(KINDS[kind](f"{fixture_id(path)}:line{n + 1}", json.loads(line)))
        elif kind in SNS_KINDS:
            documents.extend(_sns(kind, fixture_id(path), json.loads(text)))
        else:
            documents.extend(KINDS[kind](fixture_id(path), json.loads(text)))
        documents.extend(_rule_envelope(path))
    return documents


ALL_DOCUMENTS = fixture_documents()
# CloudWatch's CONTROL_MESSAGE probe (empty logGroup) is dropped before any schema check.
CONTROL_MESSAGE = "iot_logs/control_message"
VALID_DOCUMENTS = [doc for doc in ALL_DOCUMENTS if doc.label != CONTROL_MESSAGE]
SEEDS: dict[Target, list[Any]] = {}
for _doc in ALL_DOCUMENTS:
    SEEDS.setdefault(_doc.target, []).append(_doc.document)
TARGETS = sorted(SEEDS, key=lambda target: (target[0], target[1] or ""))


def _target_id(target: Target) -> str:
    return target[0] if target[1] is None else f"{target[0]}/{target[1]}"


# --- the oracle -----------------------------------------------------------------------------


def _ecma_pattern(pattern: str) -> str:
    """The pattern with ECMA-262's `$`: the end of the string only.

    JSON Schema patterns are ECMA-262 regexes. In Python `$` also matches before a final
    newline, so plain jsonschema (re.search) accepts 'pump-0017\\n' as a thing name, where
    the schema (and the Rust regexes of jsonschema-rs) reject it. Every schema pattern ends
    in its only `$` (asserted below), so swapping that one is exact.
    """
    return pattern[:-1] + r"\Z" if pattern.endswith("$") else pattern


def _pattern(
    validator: Any, pattern: str, instance: object, schema: dict[str, Any]
) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and not re.search(_ecma_pattern(pattern), instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


EcmaDraft7Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator, {"pattern": _pattern}
)


@functools.cache
def oracle(target: Target) -> Any:
    return EcmaDraft7Validator(schema_for(*target))


def _patterns(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            yield node["pattern"]
        for value in node.values():
            yield from _patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from _patterns(value)


# --- the tests ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_schema_is_valid_draft7(name: str) -> None:
    jsonschema.Draft7Validator.check_schema(load_schema(name))


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_patterns_end_in_their_only_dollar(name: str) -> None:
    for pattern in _patterns(load_schema(name)):
        assert pattern.startswith("^")
        assert pattern.count("$") == 1
        assert pattern.endswith("$")


def test_every_fixture_folder_is_a_transform_input_or_another_lambdas_event() -> None:
    """A new transform input folder must join TRANSFORM_KINDS, or the demo and tests miss it."""
    folders = {path.name for path in SAMPLES_DIR.iterdir() if path.is_dir()}
    assert set(TRANSFORM_KINDS) == set(KINDS)
    assert folders - set(TRANSFORM_KINDS) == {
        "audit_collector",
        "inventory_collector",
        "custom_resource",
        "firehose_backup",
        "hec_events",
    }


def test_every_fixture_and_every_schema_is_covered() -> None:
    labels = {doc.label.split(":")[0] for doc in ALL_DOCUMENTS}
    assert labels == {fixture_id(path) for path in fixture_paths()}
    assert {doc.target[0] for doc in VALID_DOCUMENTS} == set(INPUT_SCHEMAS)
    per_item = {
        ("metrics_export", "metric"),
        ("audit_notification", "checkDetail"),
        ("audit_finding", "finding"),
        ("device_report", "customMetric"),
    }
    assert per_item <= set(TARGETS)


@pytest.mark.parametrize(
    "doc",
    VALID_DOCUMENTS,
    ids=[f"{doc.label}->{_target_id(doc.target)}" for doc in VALID_DOCUMENTS],
)
def test_fixture_document_matches_its_schema(doc: Document) -> None:
    errors = [
        error.message
        for error in jsonschema.Draft7Validator(schema_for(*doc.target)).iter_errors(doc.document)
    ]
    assert errors == []
    assert checker(*doc.target)(doc.document) is None


def test_control_message_is_not_a_valid_data_message() -> None:
    (control,) = (doc for doc in ALL_DOCUMENTS if doc.label == CONTROL_MESSAGE)
    assert not oracle(control.target).is_valid(control.document)
    assert checker(*control.target)(control.document) is not None


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\u2028", " "])
def test_dollar_is_the_end_of_the_string(suffix: str) -> None:
    metric = json.loads(json.dumps(SEEDS[("metrics_export", "metric")][0]))
    metric["thing"] += suffix
    assert checker("metrics_export", "metric")(metric) is not None
    assert not oracle(("metrics_export", "metric")).is_valid(metric)


@pytest.mark.property
@given(st.sampled_from(TARGETS), st.binary(min_size=16, max_size=128))
def test_checker_agrees_with_jsonschema(target: Target, data: bytes) -> None:
    """On mutations of the fixture documents, for every schema and per-item definition."""
    choices = Choices(data)
    document = json.loads(json.dumps(choices.pick(SEEDS[target])))
    for _ in range(choices.count(3)):
        document = mutate(choices, document)
    expected = oracle(target).is_valid(document)
    error = checker(*target)(document)
    event(f"{_target_id(target)}: {'valid' if expected else 'invalid'}")
    if expected:
        assert error is None, error
    else:
        assert error is not None, [e.message for e in oracle(target).iter_errors(document)]
