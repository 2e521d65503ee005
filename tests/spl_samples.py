"""A small knowledge set and a tiny app for the SPL toolkit's tests (tests/test_spl_*.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from appbuild.spl.knowledge import Knowledge, Macro
from appbuild.spl.validation import Validation

# A validation both readings of the documentation accept (bare argument name, $arg$ token).
METRIC_NAME = Validation(
    ("metric_name",), 'match(coalesce(metric_name, "$metric_name$"), "^[A-Za-z0-9:._-]+$")'
)
KNOWLEDGE = Knowledge(
    macros={
        "iot_defender_index": Macro(0, definition="index=iot_defender"),
        "iot_thing_filter": Macro(1, ("thing",), definition="thingName=$thing$"),
        "iot_window": Macro(2, ("start", "end"), definition="earliest=$start$ latest=$end$"),
        "iot_metric": Macro(
            1,
            ("metric_name",),
            definition='`iot_defender_index` metric::"$metric_name$"',
            validation=METRIC_NAME,
        ),
    },
    lookups={
        "iot_thing_owners": ("thingName", "owner", "team"),
        "iot_suppressions.csv": ("thingName", "behaviorName", "suppressed"),
        "iot_thing_state": ("_key", "thingName"),
    },
    eventtypes=frozenset({"iot_violation", "iot_violation_cleared", "iot_lifecycle"}),
)

MACROS_CONF = r"""
# the only place an index is named
[iot_defender_index]
definition = index=iot_defender

[iot_window(2)]
args = start, end
definition = earliest=$start$ latest=$end$

[iot_violations]
definition = `iot_defender_index` eventtype=iot_violation \
    | stats count by thingName

[bad_arity(2)]
args = only_one
definition = x=$only_one$

[leaks_index]
definition = index=main

[eval_built(1)]
args = name
iseval = 1
definition = "thingName=" . $name$ . ")"

[summarise]
definition = | stats count by thingName

[iot_metric(1)]
args = metric_name
definition = `iot_defender_index` metric::"$metric_name$"
validation = match(coalesce(metric_name, "$metric_name$"), "^[A-Za-z0-9:._-]+$")
"""

TRANSFORMS_CONF = """
[iot_thing_owners]
filename = iot_thing_owners.csv

[iot_thing_state]
external_type = kvstore
collection = iot_thing_state
fields_list = _key, thingName
"""

EVENTTYPES_CONF = """
[iot_violation]
search = `iot_defender_index` sourcetype=aws:iot:defender violationEventType=in-alarm

[iot_bad]
search = `iot_defender_index` | stats count
"""

SAVEDSEARCHES_CONF = r"""
[default]
enableSched = 0

[IoT - Violations by thing]
enableSched = 1
cron_schedule = */15 * * * *
dispatch.earliest_time = -15m
search = `iot_violations` \
| lookup iot_thing_owners thingName OUTPUT owner

[IoT - Unbounded]
enableSched = 1
search = `iot_defender_index` | stats count

[IoT - Typo]
search = `iot_defender_index` | lookup iot_owners thingName OUTPUT owner

[IoT - Report]
search = `iot_window(-24h, now)` `iot_defender_index` | stats count

[IoT - Metric]
search = `iot_metric(aws:all-bytes-out)` OR `iot_metric(aws:all bytes)` | stats count
"""

STUDIO_VIEW = """<dashboard version="2" theme="dark">
  <label>IoT fleet</label>
  <definition><![CDATA[
{
  "dataSources": {
    "ds_ok": {"type": "ds.search", "options": {
      "query": "`iot_defender_index` thingName=$thing$ | stats count by thingName",
      "queryParameters": {"earliest": "$global_time.earliest$"}}},
    "ds_typo": {"type": "ds.search", "options": {"query": "`iot_defender_index` | stast count"}},
    "ds_chain": {"type": "ds.chain", "options": {"extend": "ds_ok", "query": "| where count > 1"}},
    "ds_saved": {"type": "ds.savedSearch", "options": {"ref": "IoT - Report"}}
  },
  "visualizations": {},
  "layout": {"type": "absolute", "structure": []}
}
  ]]></definition>
</dashboard>
"""

SIMPLE_VIEW = """<form version="1.1">
  <search id="base"><query>`iot_defender_index` | stats count by thingName</query></search>
  <row><panel><table>
    <search base="base"><query>| where count &gt; 1 | sort - count</query></search>
  </table></panel></row>
  <row><panel><table><search><query>index=main | stats count</query></search></table></panel></row>
</form>
"""


def tiny_app(root: Path) -> Path:
    """Write an app with one of each kind of search, some correct and some broken, at `root`."""
    default = root / "default"
    (default / "data" / "ui" / "views").mkdir(parents=True)
    (root / "lookups").mkdir()
    (root / "lookups" / "iot_thing_owners.csv").write_text("thingName,owner\n")
    files = {
        "macros.conf": MACROS_CONF,
        "transforms.conf": TRANSFORMS_CONF,
        "eventtypes.conf": EVENTTYPES_CONF,
        "savedsearches.conf": SAVEDSEARCHES_CONF,
        "data/ui/views/iot_fleet.xml": STUDIO_VIEW,
        "data/ui/views/iot_simple.xml": SIMPLE_VIEW,
    }
    for name, text in files.items():
        (default / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return root
