"""The Dashboard Studio definitions in dashboards/, one per view of the app's navigation.

Offline checks of what Splunk would otherwise only reveal in a browser: every reference inside a
definition resolves (data sources, chains, layout items, inputs, tokens), drilldowns point at
dashboards and tokens that exist, and every search goes through the app's own macros and passes
the structural checker (appbuild/spl) against the built app.
The searches over the responder's audit trail read only fields its events have (the events of
its own records, through the real transform), and so does the props CIM mapping they rely on.
"""

from __future__ import annotations

import functools
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appbuild.spl.check import check_search
from appbuild.spl.fields import event_fields, flatten
from appbuild.spl.knowledge import expand
from appbuild.spl.lexer import macro_calls
from appbuild.spl.reading import expression_fields, missing_fields
from respond.requests import ACTIONS
from tests.built_app import app_knowledge
from tests.datasets import dataset_events
from tests.splunk_conf import props_outputs, read_conf
from tests.splunk_conf import stanza as conf_stanza

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
APP_DIR = ROOT / "splunk_app" / "iot_defender_security"
APP = "iot_defender_security"
GRID_WIDTH = 1440
GLOBAL_TIME = {"earliest": "$global_time.earliest$", "latest": "$global_time.latest$"}
VIZ_TYPES = frozenset(
    {
        "splunk.area",
        "splunk.bar",
        "splunk.column",
        "splunk.line",
        "splunk.singlevalue",
        "splunk.table",
    }
)
# Dashboards allowed to have no drilldown at all, each with the reason. Every dashboard has one.
NO_DRILLDOWN: dict[str, str] = {}
# Drilldowns between dashboards that the navigation relies on: (from view, to view).
REQUIRED_LINKS = frozenset(
    {
        ("iot_fleet_security_overview", "iot_device_investigation"),
        ("iot_audit_posture", "iot_device_investigation"),
        ("iot_response_activity", "iot_device_investigation"),
        ("iot_auth_and_operational_errors", "iot_device_investigation"),
    }
)
# Data sources of the device investigation that deliberately ignore the thing token.
INVESTIGATION_UNFILTERED = frozenset({"ds_inventory"})

_TOKEN = re.compile(r"\$([^$\s|]+)(?:\|[a-z]+)?\$")
_ID = {
    "dataSources": re.compile(r"ds_[a-z0-9_]+"),
    "visualizations": re.compile(r"viz_[a-z0-9_]+"),
    "inputs": re.compile(r"input_[a-z0-9_]+"),
}
# Click context a drilldown handler may read besides the dashboard's own tokens.
_CLICK = re.compile(r"(row\.[\w.]+|click\.[\w.]+|name|value)")


def _nav_views() -> list[str]:
    # The app's own navigation file, not untrusted input.
    nav = ET.parse(APP_DIR / "default" / "data" / "ui" / "nav" / "default.xml")  # noqa: S314
    return [v.attrib["name"] for v in nav.getroot().iter("view") if v.attrib["name"] != "search"]


VIEWS = _nav_views()


@functools.cache
def _load(view: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DASHBOARDS / f"{view}.json").read_text(encoding="utf-8"))
    return data


def _full_query(dash: dict[str, Any], ds_id: str, seen: tuple[str, ...] = ()) -> str:
    """The search Splunk runs for a data source: a chain's base searches, then the chain."""
    assert ds_id not in seen, f"chain cycle through {ds_id}"
    source = dash["dataSources"][ds_id]
    query: str = source["options"]["query"]
    if source["type"] == "ds.chain":
        return _full_query(dash, source["options"]["extend"], (*seen, ds_id)) + "\n" + query
    return query


def _handlers(dash: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for viz_id, viz in dash["visualizations"].items():
        for handler in viz.get("eventHandlers", []):
            yield viz_id, handler


def _searches(dash: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, full query) of every data source and every linkToSearch drilldown."""
    for ds_id in dash["dataSources"]:
        yield ds_id, _full_query(dash, ds_id)
    for viz_id, handler in _handlers(dash):
        if handler["type"] == "drilldown.linkToSearch":
            yield f"{viz_id} drilldown", handler["options"]["query"]


def _layout_items(dash: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for layout in dash["layout"]["layoutDefinitions"].values():
        yield from layout["structure"]


def _defined_tokens(dash: dict[str, Any]) -> set[str]:
    tokens: set[str] = set()
    for item in dash.get("inputs", {}).values():
        token = item["options"]["token"]
        if item["type"] == "input.timerange":
            tokens.update({f"{token}.earliest", f"{token}.latest"})
        else:
            tokens.add(token)
    for _viz_id, handler in _handlers(dash):
        if handler["type"] == "drilldown.setToken":
            tokens.update(entry["token"] for entry in handler["options"]["tokens"])
    tokens.update(dash.get("defaults", {}).get("tokens", {}).get("default", {}))
    return tokens


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


views = pytest.mark.parametrize("view", VIEWS)


def test_every_navigation_view_has_one_dashboard() -> None:
    assert len(VIEWS) == 6
    assert sorted(p.stem for p in DASHBOARDS.glob("*.json")) == sorted(VIEWS)


def test_titles_are_unique() -> None:
    titles = [_load(view)["title"] for view in VIEWS]
    assert len(set(titles)) == len(titles)


@views
def test_file_is_readable_json_with_two_space_indent(view: str) -> None:
    text = (DASHBOARDS / f"{view}.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2, ensure_ascii=False) + "\n"


@views
def test_fits_in_the_cdata_section_of_its_view(view: str) -> None:
    # appbuild/build_app.py wraps the JSON in <definition><![CDATA[...]]></definition>.
    assert "]]>" not in (DASHBOARDS / f"{view}.json").read_text(encoding="utf-8")


@views
def test_has_the_studio_sections(view: str) -> None:
    dash = _load(view)
    for key in ("title", "description"):
        assert isinstance(dash.get(key), str), key
        assert dash[key].strip(), key
    for key in ("dataSources", "visualizations", "inputs", "layout", "defaults"):
        assert isinstance(dash.get(key), dict), key
        assert dash[key], key
    for section, pattern in _ID.items():
        for item_id in dash[section]:
            assert pattern.fullmatch(item_id), f"{section}: {item_id}"


@views
def test_data_sources_are_searches_over_the_global_time_range(view: str) -> None:
    dash = _load(view)
    sources = dash["dataSources"]
    used = {viz["dataSources"]["primary"] for viz in dash["visualizations"].values()}
    for ds_id, source in sources.items():
        assert source["type"] in ("ds.search", "ds.chain"), ds_id
        assert source.get("name"), f"{ds_id} has no name"
        options = source["options"]
        if source["type"] == "ds.search":
            assert options["queryParameters"] == GLOBAL_TIME, ds_id
        else:
            assert options["extend"] in sources, f"{ds_id} extends a missing data source"
            assert options["query"].lstrip().startswith("|"), ds_id
            used.add(options["extend"])
        _full_query(dash, ds_id)  # no chain cycle
    assert set(sources) == used, f"unused data sources: {sorted(set(sources) - used)}"
    search_defaults = dash["defaults"]["dataSources"]["ds.search"]["options"]
    assert search_defaults["queryParameters"] == GLOBAL_TIME


@views
def test_visualizations_read_existing_data_sources(view: str) -> None:
    dash = _load(view)
    for viz_id, viz in dash["visualizations"].items():
        assert viz["type"] in VIZ_TYPES, viz_id
        assert viz.get("title"), f"{viz_id} has no title"
        assert viz["dataSources"]["primary"] in dash["dataSources"], viz_id
        if viz.get("eventHandlers"):
            assert viz["options"].get("drilldown") == "all", f"{viz_id}: drilldown not enabled"


@views
def test_layout_places_every_visualization_once_on_the_grid(view: str) -> None:
    dash = _load(view)
    layout = dash["layout"]
    tabs = [tab["layoutId"] for tab in layout["tabs"]["items"]]
    assert sorted(tabs) == sorted(layout["layoutDefinitions"])
    assert sorted(layout["globalInputs"]) == sorted(dash["inputs"])
    placed = [item["item"] for item in _layout_items(dash)]
    assert sorted(placed) == sorted(dash["visualizations"])
    for definition in layout["layoutDefinitions"].values():
        assert definition["type"] == "grid"
        assert definition["options"]["width"] == GRID_WIDTH
        boxes = [item["position"] for item in definition["structure"]]
        assert definition["options"]["height"] == max(b["y"] + b["h"] for b in boxes)
        for item in definition["structure"]:
            box = item["position"]
            assert item["type"] == "block", item["item"]
            assert box["x"] >= 0, item["item"]
            assert box["y"] >= 0, item["item"]
            assert box["w"] > 0, item["item"]
            assert box["h"] > 0, item["item"]
            assert box["x"] + box["w"] <= GRID_WIDTH, item["item"]
        for i, a in enumerate(boxes):
            for b in boxes[i + 1 :]:
                apart = (
                    a["x"] + a["w"] <= b["x"]
                    or b["x"] + b["w"] <= a["x"]
                    or a["y"] + a["h"] <= b["y"]
                    or b["y"] + b["h"] <= a["y"]
                )
                assert apart, f"{a} overlaps {b}"


@views
def test_inputs_have_a_global_time_picker_and_distinct_tokens(view: str) -> None:
    dash = _load(view)
    tokens = [item["options"]["token"] for item in dash["inputs"].values()]
    assert len(set(tokens)) == len(tokens)
    kinds = {item["options"]["token"]: item["type"] for item in dash["inputs"].values()}
    assert kinds.get("global_time") == "input.timerange"


@views
def test_every_token_used_is_defined(view: str) -> None:
    dash = _load(view)
    defined = _defined_tokens(dash)
    for ds_id, source in dash["dataSources"].items():
        for token in _TOKEN.findall(json.dumps(source)):
            assert token in defined, f"{ds_id} uses undefined token ${token}$"
    for viz_id, viz in dash["visualizations"].items():
        for token in _TOKEN.findall(viz["title"]):
            assert token in defined, f"{viz_id} title uses undefined token ${token}$"
        for handler in viz.get("eventHandlers", []):
            for text in _strings(handler["options"]):
                for token in _TOKEN.findall(text):
                    assert token in defined or _CLICK.fullmatch(token), f"{viz_id}: ${token}$"


@views
def test_searches_go_through_the_app_macros_and_pass_the_checker(view: str) -> None:
    """Every search (a chain with its bases) and every chain on its own, against the built
    app's knowledge: macros, lookups, eventtypes, balance, no index named."""
    dash = _load(view)
    problems: list[str] = []
    for label, query in _searches(dash):
        assert query == query.strip(), label
        assert macro_calls(query), f"{label} does not search through an app macro"
        problems += [
            f"{label}: {p.code}: {p.message}" for p in check_search(query, app_knowledge())
        ]
    for ds_id, source in dash["dataSources"].items():
        if source["type"] == "ds.chain":
            found = check_search(source["options"]["query"], app_knowledge(), fragment=True)
            problems += [f"{ds_id} (chain): {p.code}: {p.message}" for p in found]
    assert not problems, "\n".join(problems)


@views
def test_drilldowns(view: str) -> None:
    dash = _load(view)
    handlers = list(_handlers(dash))
    assert handlers or view in NO_DRILLDOWN, f"{view} has no drilldown and no documented reason"
    for viz_id, handler in handlers:
        options = handler["options"]
        kind = handler["type"]
        if kind == "drilldown.linkToDashboard":
            assert options["app"] == APP, viz_id
            assert options["dashboard"] in VIEWS, viz_id
            target = _load(options["dashboard"])
            target_tokens = {item["options"]["token"] for item in target["inputs"].values()}
            query = _full_query(dash, dash["visualizations"][viz_id]["dataSources"]["primary"])
            for entry in options.get("tokens", []):
                assert set(entry) == {"token", "value"}, viz_id
                assert entry["token"] in target_tokens, f"{viz_id}: target has no {entry['token']}"
                field = re.fullmatch(r"row\.(\w+)\.value", entry["value"])
                assert field, f"{viz_id}: {entry['value']}"
                assert re.search(rf"\b{field[1]}\b", query), f"{viz_id}: no field {field[1]}"
        elif kind == "drilldown.linkToSearch":
            assert options["type"] == "custom", viz_id
            for key in ("query", "earliest", "latest"):
                assert options[key], f"{viz_id}: no {key}"
        elif kind == "drilldown.setToken":
            for entry in options["tokens"]:
                assert set(entry) == {"token", "key"}, viz_id
                assert _CLICK.fullmatch(entry["key"]), viz_id
        else:
            pytest.fail(f"{viz_id}: unexpected handler {kind}")


def test_dashboards_link_to_the_device_investigation() -> None:
    links = {
        (view, handler["options"]["dashboard"])
        for view in VIEWS
        for _viz_id, handler in _handlers(_load(view))
        if handler["type"] == "drilldown.linkToDashboard"
    }
    assert links >= REQUIRED_LINKS


def test_device_investigation_is_filtered_on_the_thing() -> None:
    dash = _load("iot_device_investigation")
    assert any(i["options"]["token"] == "thing" for i in dash["inputs"].values())
    for ds_id in dash["dataSources"]:
        uses_thing = "$thing|s$" in _full_query(dash, ds_id)
        assert uses_thing != (ds_id in INVESTIGATION_UNFILTERED), ds_id


# --- the responder's audit trail: what its events hold, and who reads it --------------------------

# A day of the responder's records of every action and outcome, through the real transform.
RESPONDER_EVENTS = dataset_events("detections/data/response_actions.ndjson")
RESPONSE_PROPS = conf_stanza(read_conf(APP_DIR / "default" / "props.conf"), "aws:iot:response")
# The CIM Change fields that name the target; every record must give them a value.
CIM_TARGET_FIELDS = ("object", "object_id", "dest", "object_category")


def _responder_fields() -> tuple[set[str], set[str]]:
    """(every field the response events have at search time, the index-time ones)."""
    extracted = set().union(*map(event_fields, RESPONDER_EVENTS))
    indexed = set().union(*(e["fields"] for e in RESPONDER_EVENTS))
    return extracted | props_outputs(RESPONSE_PROPS), indexed


def _responder_searches() -> Iterator[tuple[str, str]]:
    """(view: label, query with its tokens filled) of every search over response events only."""
    for view in VIEWS:
        for label, query in _searches(_load(view)):
            filled = _TOKEN.sub('"x"', query)
            expanded = expand(filled, app_knowledge())
            if set(re.findall(r'sourcetype="([^"]+)"', expanded)) == {"aws:iot:response"}:
                yield f"{view}: {label}", filled


def test_responder_events_cover_every_action_outcome_and_target() -> None:
    events = [e["event"] for e in RESPONDER_EVENTS]
    assert {e["action"] for e in events} == {a for a, spec in ACTIONS.items() if spec.changes}
    assert {e["status"] for e in events} == {"SUCCEEDED", "FAILED", "SKIPPED"}
    targets = {key for e in events for key in flatten(e["target"])}
    assert targets >= {
        "thingName",
        "thingGroupName",
        "firmwareVersion",
        "certificateId",
        "auditTarget.finding_ids{}",
        "auditTarget.check_name",
        "scope.value",
    }
    assert {"error.code", "error.message"} <= set(flatten(next(e for e in events if "error" in e)))


def test_searches_over_the_responders_events_read_fields_they_have() -> None:
    names, indexed = _responder_fields()
    searches = dict(_responder_searches())
    assert any(label.startswith("iot_response_activity:") for label in searches)
    for label, query in searches.items():
        expanded = expand(query, app_knowledge())
        assert missing_fields(expanded, names, indexed, app_knowledge().lookups) == [], label
        terms = set(re.findall(r"([A-Za-z_][\w.]*)::", query))
        assert terms <= indexed, f"{label}: {sorted(terms - indexed)} are not index-time fields"


def test_cim_change_mapping_reads_fields_the_responders_events_have() -> None:
    """Every field an EVAL of the mapping reads is in some record (EVALs do not see each other),
    and every record gives the target fields a value."""
    extracted = set().union(*map(event_fields, RESPONDER_EVENTS))
    for key, expression in RESPONSE_PROPS.items():
        if key.startswith("EVAL-"):
            missing = expression_fields(expression) - extracted
            assert not missing, f"{key} reads {sorted(missing)}"
    for name in CIM_TARGET_FIELDS:
        inputs = set(re.findall(r"'([^']+)'", RESPONSE_PROPS[f"EVAL-{name}"]))
        for event in RESPONDER_EVENTS:
            assert inputs & event_fields(event), (name, event["event"]["target"])


def test_things_in_quarantine_counts_every_quarantine_and_release() -> None:
    """Group and version quarantines (one record per thing) count as a thing's own; only the
    responder's successful records do (iot_defender_containment_records)."""
    query = _full_query(_load("iot_response_activity"), "ds_quarantined")
    assert query.startswith("`iot_defender_containment_records`\n")
    assert 'where match(last_action, "^quarantine_")' in query
