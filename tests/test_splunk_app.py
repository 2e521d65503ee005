"""The built Splunk app: conf files parse, props fit the transform's events, CIM mappings are whole.

The app is built (appbuild/build_app.py) into a temporary folder and read with Splunk's own conf
parser. Events come from running every sample message through the real transform, so props are
checked against what the pipeline actually sends. `make package-check` adds AppInspect.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from addonfactory_splunk_conf_parser_lib import TABConfigParser

from appbuild.build_app import (
    APP_ID,
    DASHBOARDS_DIR,
    DETECTIONS_DIR,
    REPO,
    REPORTS_DIR,
    SOAR_PLAYBOOKS,
    SearchDefinition,
    build,
    conf_value,
    load_definitions,
    saved_search_stanza,
    soar_label,
)
from appbuild.spl.check import check_app
from appbuild.spl.fields import flatten
from devtools.samples import sample_paths
from shared.catalog import audit_check
from tests.device_defender import DETECT_METRICS
from tests.splunk_conf import props_outputs, read_conf, stanza
from tests.support import record_bytes, report_events, transform
from transform.sourcetypes import ALL_SOURCETYPES

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?$")

# CIM data models: required fields of the datasets our eventtypes feed (Splunk_SA_CIM 4.x).
CIM_REQUIRED = {
    "alert": {"app", "description", "dest", "id", "signature", "signature_id", "severity", "src",
              "type", "user"},
    "authentication": {"action", "app", "dest", "src", "user"},
    "change": {"action", "change_type", "command", "dest", "dvc", "object", "object_attrs",
               "object_category", "object_id", "src", "status", "user", "vendor_product"},
    "inventory": {"dest", "description", "enabled", "family", "serial", "status",
                  "vendor_product", "version"},
}  # fmt: skip
# Values CIM allows for the fields whose EVALs produce constants.
CIM_VALUES = {
    ("alert", "severity"): {"critical", "high", "medium", "low", "informational"},
    ("alert", "type"): {"alarm", "alert", "event", "task", "warning"},
    ("authentication", "action"): {"success", "failure", "pending", "error"},
    ("change", "status"): {"success", "failure"},
}
# Index-time fields that fields.conf must not declare (see its header).
NOT_DECLARED = {"status", "action", "severity", "thing_type"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("app"))


def conf(app: Path, name: str) -> TABConfigParser:
    return read_conf(app / "default" / f"{name}.conf")


SAMPLE_EVENTS = report_events(transform([record_bytes(p) for p in sample_paths()]))
EVENTS_BY_SOURCETYPE: dict[str, list[dict[str, Any]]] = defaultdict(list)
for _event in SAMPLE_EVENTS:
    EVENTS_BY_SOURCETYPE[_event["sourcetype"]].append(_event)


def body_fields(sourcetype: str) -> set[str]:
    return {f for e in EVENTS_BY_SOURCETYPE[sourcetype] for f in flatten(e["event"])}


def index_time_fields(sourcetype: str) -> set[str]:
    return {f for e in EVENTS_BY_SOURCETYPE[sourcetype] for f in e.get("fields", {})}


def eventtype_sourcetype(search: str) -> str:
    match = re.search(r'sourcetype="([^"]+)"', search)
    assert match, search
    return match.group(1)


# --- App identity and layout -------------------------------------------------------------------


def test_every_conf_file_parses_and_has_no_default_stanza(app: Path) -> None:
    files = sorted((app / "default").glob("*.conf"))
    expected = {"app", "props", "transforms", "eventtypes", "tags", "macros", "fields",
                "collections", "savedsearches"}  # fmt: skip
    assert {f.stem for f in files} >= expected
    for path in files:
        parser = conf(app, path.stem)
        assert parser.sections(), path.name
        assert "default" not in parser.sections(), path.name


def test_app_identity_fits_appinspect(app: Path) -> None:
    parser = conf(app, "app")
    assert parser.get("package", "id") == APP_ID == app.name
    assert parser.get("id", "name") == APP_ID
    version = parser.get("launcher", "version")
    assert SEMVER.match(version)
    assert parser.get("id", "version") == version
    assert 5 <= len(parser.get("ui", "label")) <= 80


def test_no_local_folder_and_no_write_access_for_everyone(app: Path) -> None:
    assert not (app / "local").exists()
    meta = (app / "metadata" / "default.meta").read_text(encoding="utf-8")
    assert not re.search(r"write\s*:\s*\[\s*\*", meta)
    assert "sc_admin" in meta  # Splunk Cloud's admin role


# --- props.conf against the transform's events -------------------------------------------------


def test_every_sourcetype_has_json_search_time_extraction_only(app: Path) -> None:
    props = conf(app, "props")
    assert set(props.sections()) == ALL_SOURCETYPES
    for sourcetype in ALL_SOURCETYPES:
        settings = stanza(props, sourcetype)
        assert settings["KV_MODE"] == "json", sourcetype
        assert settings["SHOULD_LINEMERGE"] == "false", sourcetype
        assert "INDEXED_EXTRACTIONS" not in settings, sourcetype  # would double every field
        assert int(settings["TRUNCATE"]) >= 65536, sourcetype


def test_truncate_fits_every_sample_event(app: Path) -> None:
    props = conf(app, "props")
    for event in SAMPLE_EVENTS:
        size = len(json.dumps(event["event"]).encode())
        assert size <= int(props.get(event["sourcetype"], "TRUNCATE")), event["sourcetype"]


def test_index_time_fields_repeated_in_the_body_are_deduplicated(app: Path) -> None:
    props = conf(app, "props")
    assert set(EVENTS_BY_SOURCETYPE) >= ALL_SOURCETYPES - {"aws:iot:defender:unparsed"}
    for sourcetype, events in EVENTS_BY_SOURCETYPE.items():
        settings = stanza(props, sourcetype)
        # A body object (violation "behavior") flattens to behavior.* and does not collide.
        repeated = {
            key
            for event in events
            for key in event.get("fields", {})
            if key in event["event"] and not isinstance(event["event"][key], dict | list)
        }
        evals = {k: v for k, v in settings.items() if k.startswith("EVAL-")}
        for key in repeated:
            # Either the field itself is de-duplicated, or a CIM EVAL replaces it and its
            # de-duplicated value lives on under another name (response action -> response_action).
            kept = "mvdedup(" in evals.get(f"EVAL-{key}", "") or any(
                f"mvdedup({key})" in value for value in evals.values()
            )
            assert kept, (sourcetype, key)


def test_fields_conf_declares_only_index_time_fields_safe_to_declare(app: Path) -> None:
    declared = set(conf(app, "fields").sections())
    sent = {key for event in SAMPLE_EVENTS for key in event.get("fields", {})}
    assert declared <= sent
    assert not declared & NOT_DECLARED
    assert {"thing", "metric", "check_name", "event_type"} <= declared


# --- CIM ---------------------------------------------------------------------------------------


def cim_mappings(app: Path) -> Iterator[tuple[str, str, str]]:
    """(eventtype, tag, sourcetype) for every tagged eventtype."""
    eventtypes, tags = conf(app, "eventtypes"), conf(app, "tags")
    for section in tags.sections():
        eventtype = section.removeprefix("eventtype=")
        sourcetype = eventtype_sourcetype(eventtypes.get(eventtype, "search"))
        for tag, state in stanza(tags, section).items():
            if state == "enabled" and tag in CIM_REQUIRED:
                yield eventtype, tag, sourcetype


def test_eventtypes_cover_the_data_models_the_issue_names(app: Path) -> None:
    mapped = {(tag, sourcetype) for _, tag, sourcetype in cim_mappings(app)}
    assert mapped == {
        ("alert", "aws:iot:defender:violation"),
        ("alert", "aws:iot:defender:audit:finding"),
        ("authentication", "aws:iot:log"),
        ("change", "aws:iot:response"),
        ("inventory", "aws:iot:thing"),
    }


def test_each_mapped_eventtype_supplies_its_data_models_required_fields(app: Path) -> None:
    props = conf(app, "props")
    for eventtype, tag, sourcetype in cim_mappings(app):
        provided = props_outputs(stanza(props, sourcetype)) | body_fields(sourcetype)
        missing = CIM_REQUIRED[tag] - provided
        assert not missing, f"{eventtype} ({tag}) lacks {sorted(missing)}"


def test_constant_cim_values_are_ones_the_data_model_allows(app: Path) -> None:
    props = conf(app, "props")
    for _, tag, sourcetype in cim_mappings(app):
        settings = stanza(props, sourcetype)
        for (model, field), allowed in CIM_VALUES.items():
            if model != tag:
                continue
            expression = settings[f"EVAL-{field}"]
            literals = set(re.findall(r'"([^"]*)"', expression))
            # Literals compared against (x=="...") are inputs, not outputs.
            compared = set(re.findall(r'[!=]=\s*"([^"]*)"', expression))
            # An EVAL without output literals passes AWS's value through (finding severity:
            # lower() of CRITICAL/HIGH/MEDIUM/LOW, all allowed).
            assert literals - compared <= allowed, (sourcetype, field, literals - compared)


def test_authentication_eventtype_selects_connect_logs_only(app: Path) -> None:
    search = conf(app, "eventtypes").get("iot_defender_authentication", "search")
    connects = [
        e for e in EVENTS_BY_SOURCETYPE["aws:iot:log"]
        if e["event"].get("eventType") in {"Connect", "Connection.AuthNError"}
    ]  # fmt: skip
    assert connects, "samples must include Connect log entries"
    assert 'eventType="Connect"' in search
    assert 'eventType="Connection.AuthNError"' in search


# --- Lookups -----------------------------------------------------------------------------------


def csv_rows(app: Path, filename: str) -> list[dict[str, str]]:
    with (app / "lookups" / filename).open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def test_every_lookup_definition_has_its_table(app: Path) -> None:
    transforms, collections = conf(app, "transforms"), conf(app, "collections")
    for name in transforms.sections():
        settings = stanza(transforms, name)
        if "filename" in settings:
            assert csv_rows(app, settings["filename"]), name
        else:
            assert settings["external_type"] == "kvstore", name
            collection = stanza(collections, settings["collection"])
            declared = {k.removeprefix("field.") for k in collection if k.startswith("field.")}
            fields = {f.strip() for f in settings["fields_list"].split(",")} - {"_key"}
            assert fields == declared, name


def test_automatic_lookups_use_defined_lookups_and_their_columns(app: Path) -> None:
    props, transforms = conf(app, "props"), conf(app, "transforms")
    for sourcetype in props.sections():
        for key, value in stanza(props, sourcetype).items():
            if not key.startswith("LOOKUP-"):
                continue
            lookup, rest = value.split(None, 1)
            settings = stanza(transforms, lookup)
            if "filename" in settings:
                columns = set(csv_rows(app, settings["filename"])[0])
            else:
                columns = {f.strip() for f in settings["fields_list"].split(",")}
            inputs, outputs = re.split(r"\bOUTPUT(?:NEW)?\b", rest, maxsplit=1)
            used = {m.group(1) for m in re.finditer(r"(\S+)(?:\s+AS\s+\S+)?", inputs + outputs)}
            assert used - {"AS"} <= columns, (sourcetype, key, used - columns)


def test_audit_check_lookup_matches_the_transforms_catalogue(app: Path) -> None:
    rows = csv_rows(app, "iot_defender_audit_checks.csv")
    assert len(rows) == 17
    for row in rows:
        check = audit_check(row["check_name"])
        assert check is not None, row["check_name"]
        assert check.name == row["check_name"]
        assert check.severity == row["severity"]
        assert row["description"]
        assert row["remediation"]


def test_metric_catalogue_lists_every_detect_metric(app: Path) -> None:
    rows = csv_rows(app, "iot_defender_metric_catalog.csv")
    assert {row["metric"] for row in rows} == DETECT_METRICS
    assert {row["value_kind"] for row in rows} <= {"count", "cidrs", "ports"}
    assert {row["side"] for row in rows} == {"cloud", "device"}


def test_risky_ports_are_valid_and_include_the_classic_iot_ones(app: Path) -> None:
    rows = csv_rows(app, "iot_defender_risky_ports.csv")
    keys = [(int(row["port"]), row["transport"]) for row in rows]
    assert len(set(keys)) == len(keys)
    assert all(1 <= port <= 65535 and transport in {"tcp", "udp"} for port, transport in keys)
    assert {
        (21, "tcp"),
        (22, "tcp"),
        (23, "tcp"),
        (2323, "tcp"),
        (80, "tcp"),
        (8080, "tcp"),
    } <= set(keys)
    assert all(row["reason"] and row["risk"] in {"critical", "high", "medium"} for row in rows)


def test_allowed_cidrs_lookup_matches_by_cidr(app: Path) -> None:
    settings = stanza(conf(app, "transforms"), "iot_defender_allowed_cidrs")
    assert settings["match_type"] == "CIDR(cidr)"
    assert settings["default_match"] == "not_allowed"
    assert all(row["allowed"] == "allowed" for row in csv_rows(app, settings["filename"]))


# --- Generated parts ---------------------------------------------------------------------------


def test_savedsearches_are_generated_from_every_definition(app: Path) -> None:
    definitions = load_definitions(DETECTIONS_DIR, REPORTS_DIR)
    text = (app / "default" / "savedsearches.conf").read_text(encoding="utf-8")
    assert text.startswith("# Generated by appbuild/build_app.py")
    saved = conf(app, "savedsearches")
    variants = [v["name"] for d in definitions for v in d.spec.get("variants", [])]
    assert sorted(saved.sections()) == sorted([d.name for d in definitions] + variants)
    macros = set(conf(app, "macros").sections())
    for definition in definitions:
        assert definition.filter_macro in macros, definition.name


def test_every_dashboard_becomes_a_studio_view(app: Path) -> None:
    views = app / "default" / "data" / "ui" / "views"
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        root = ET.parse(views / f"{path.stem}.xml").getroot()  # noqa: S314 - the app's own file
        assert root.tag == "dashboard"
        assert root.get("version") == "2"
        definition = root.findtext("definition")
        assert definition is not None
        assert json.loads(definition) == json.loads(path.read_text(encoding="utf-8"))


def test_nav_names_only_views_that_exist(app: Path) -> None:
    nav = ET.parse(app / "default" / "data" / "ui" / "nav" / "default.xml").getroot()  # noqa: S314 - the app's own file
    built = {p.stem for p in (app / "default" / "data" / "ui" / "views").glob("*.xml")}
    named = {view.get("name") for view in nav.iter("view")} - {"search"}
    assert named <= built | {p.stem for p in DASHBOARDS_DIR.glob("*.json")}


def test_multi_line_conf_values_continue_with_backslashes() -> None:
    assert conf_value("a\n| b  \n\n| c\n") == "a \\\n| b \\\n| c"


SPEC = {
    "name": "IoT - Example",
    "type": "TTP",
    "description": "An example detection used to check the generated stanza.",
    "search": "`iot_defender_metrics`\n| stats count by thing\n| `example_filter`",
    "severity": "high",
    "schedule": {"cron_schedule": "*/15 * * * *", "earliest_time": "-20m",
                 "latest_time": "now", "enabled": False},
    "throttling": {"fields": ["thing", "port"], "period": "24h"},
}  # fmt: skip


def test_alert_stanza_carries_schedule_severity_and_throttling() -> None:
    text = saved_search_stanza(SearchDefinition(Path("example.yml"), SPEC))
    lines = text.splitlines()
    assert lines[0] == "[IoT - Example]"
    assert "disabled = 1" in lines
    assert "alert.severity = 4" in lines
    assert "alert.suppress.fields = thing,port" in lines
    assert "alert.suppress.period = 24h" in lines
    assert "cron_schedule = */15 * * * *" in lines
    assert "search = `iot_defender_metrics` \\" in lines


def test_report_stanza_has_no_alert_settings() -> None:
    spec = SPEC | {"type": "Report"}
    spec.pop("throttling")
    text = saved_search_stanza(SearchDefinition(Path("example.yml"), spec))
    assert "alert." not in text
    assert "counttype" not in text


def test_a_detection_a_playbook_serves_hands_off_to_soar_disabled() -> None:
    """The Splunk App for SOAR Export's sendtophantom action, off until an admin enables it:
    the default SOAR server, the playbook's label, one container per result row."""
    spec = SPEC | {"playbook": "IoT_Open_Port_Response"}
    lines = saved_search_stanza(SearchDefinition(Path("example.yml"), spec)).splitlines()
    assert [line for line in lines if line.startswith("action.sendtophantom")] == [
        "action.sendtophantom = 0",
        "action.sendtophantom.param.phantom_server = Default",
        "action.sendtophantom.param.label = iot_open_port_response",
        "action.sendtophantom.param.severity = high",
        "action.sendtophantom.param.sensitivity = amber",
        "action.sendtophantom.param.grouping = 0",
        "action.sendtophantom.param.container_name = search_name",
        f"action.sendtophantom.param.search_description = {SPEC['description']}",
    ]
    # The alert triggers once per result, so each row becomes its own container.
    assert "alert.digest_mode = 0" in lines


@pytest.mark.parametrize(
    ("severity", "container"),
    [("critical", "high"), ("high", "high"), ("medium", "medium"), ("low", "low"),
     ("informational", "low")],
)  # fmt: skip
def test_soar_severity_is_one_soar_ships(severity: str, container: str) -> None:
    spec = SPEC | {"playbook": "IoT_Audit_Remediation", "severity": severity}
    lines = saved_search_stanza(SearchDefinition(Path("example.yml"), spec)).splitlines()
    assert f"action.sendtophantom.param.severity = {container}" in lines


def test_a_detection_no_playbook_serves_sends_nothing_to_soar() -> None:
    assert "sendtophantom" not in saved_search_stanza(SearchDefinition(Path("example.yml"), SPEC))


def test_an_unknown_playbook_fails_the_build() -> None:
    spec = SPEC | {"playbook": "IoT_Open_Port_Responce"}
    with pytest.raises(ValueError, match="unknown SOAR playbook"):
        saved_search_stanza(SearchDefinition(Path("example.yml"), spec))


def test_built_hand_offs_are_disabled_and_labelled_for_their_playbooks(app: Path) -> None:
    definitions = load_definitions(DETECTIONS_DIR, REPORTS_DIR)
    wired = {d.name: d.spec["playbook"] for d in definitions if "playbook" in d.spec}
    wired |= {
        variant["name"]: d.spec["playbook"]
        for d in definitions
        if "playbook" in d.spec
        for variant in d.spec.get("variants", [])
    }
    assert wired
    saved = conf(app, "savedsearches")
    for name in saved.sections():
        settings = stanza(saved, name)
        if name in wired:
            assert settings["action.sendtophantom"] == "0", name
            assert settings["action.sendtophantom.param.label"] == soar_label(wired[name]), name
        else:
            assert not [key for key in settings if key.startswith("action.sendtophantom")], name


def test_detections_name_the_projects_playbooks() -> None:
    """Each playbook a detection names is one SOAR knows, and each that detections feed has one;
    the analyst's release playbook is fed by none. Labels tell the playbooks apart."""
    schema = json.loads((REPO / "detections" / "detection.schema.json").read_text("utf-8"))
    named = set(schema["properties"]["playbook"]["enum"])
    assert named == set(SOAR_PLAYBOOKS) - {"IoT_Device_Release"}
    served = {d.spec["playbook"] for d in load_definitions(DETECTIONS_DIR) if "playbook" in d.spec}
    assert served == named
    assert len({soar_label(playbook) for playbook in SOAR_PLAYBOOKS}) == len(SOAR_PLAYBOOKS)


def test_the_app_passes_the_spl_checker(app: Path) -> None:
    problems = {label: found for label, found in check_app(app).items() if found}
    assert problems == {}
