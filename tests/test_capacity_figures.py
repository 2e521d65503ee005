"""iot_defender_splunk.capacity_figures: the committed figures are what the transform makes now,
the representative messages are the stack's, and the model's constants are the stack's."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from collect import inventory
from devtools.cfn_template import Stack, load_template
from iot_defender_splunk import capacity, capacity_figures
from iot_defender_splunk.capacity_figures import REPRESENTATIVE
from iot_defender_splunk.local_lambda import LocalLambdaContext
from iot_defender_splunk.simulator.delivery import firehose_event
from shared import audit as shared_audit
from shared import firehose as shared_firehose
from transform import handler
from transform.config import Settings
from transform.sourcetypes import UNPARSED

COMMITTED = json.loads(capacity_figures.FIGURES_PATH.read_text(encoding="utf-8"))
DETECT_STACK = Stack(load_template(), EnableDetect="true")


def test_the_committed_message_figures_are_what_the_transform_makes_now() -> None:
    """Re-run `make capacity-figures` when this fails: the transform or a message changed."""
    assert COMMITTED["messages"] == capacity_figures.all_message_figures()


def test_the_committed_file_says_how_and_where_it_was_measured() -> None:
    assert COMMITTED["command"] == "make capacity-figures"
    assert set(COMMITTED["machine"]) == {"python", "cpu", "cpus", "platform"}
    timing = COMMITTED["transform"]
    assert timing["batch_bytes"] == capacity.Buffering().transform_mb * capacity.MB  # the default
    assert set(timing["ms_per_mb"]) == set(REPRESENTATIVE)
    assert all(ms > 0 for ms in timing["ms_per_mb"].values())


def test_the_installed_model_reads_the_committed_file() -> None:
    assert capacity.figures() == COMMITTED


@pytest.mark.parametrize("kind", sorted(REPRESENTATIVE))
def test_every_representative_message_becomes_real_events(kind: str) -> None:
    figures = COMMITTED["messages"][kind]
    assert UNPARSED not in figures["events"]
    assert sum(figures["events"].values()) >= figures["messages"]
    assert figures["hec_bytes"] > sum(figures["raw_bytes"].values())


@pytest.mark.parametrize("kind", sorted(REPRESENTATIVE))
def test_the_lambda_handler_sends_the_bytes_the_figures_count(kind: str) -> None:
    """Differential: the figures' pure transform path and the deployed handler agree."""
    lambda_handler = handler.make_handler(
        handler.Runtime(Settings(default_index=capacity_figures.INDEX))
    )
    records = REPRESENTATIVE[kind](0)
    event = firehose_event(records, arrival_ms=capacity_figures.NOW_MS)
    response: dict[str, Any] = lambda_handler(event, LocalLambdaContext())
    sent = sum(len(base64.b64decode(record["data"])) for record in response["records"])
    assert sent == COMMITTED["messages"][kind]["hec_bytes"]


def test_a_batch_reaches_the_stacks_buffer_size_without_duplicate_datapoints() -> None:
    records = capacity_figures.batch_of("detect_export")
    assert sum(map(len, records)) >= capacity_figures.BATCH_BYTES
    assert len(set(records)) == len(records)


def _exported_metrics() -> set[str]:
    profile = DETECT_STACK.properties("RuleSecurityProfile")
    behaviors = {b["Metric"] for b in profile["Behaviors"] if b.get("ExportMetric")}
    retained = {m["Metric"] for m in profile["AdditionalMetricsToRetainV2"] if m["ExportMetric"]}
    return behaviors | retained


def _rule_payload(record: bytes) -> Any:
    return json.loads(base64.b64decode(json.loads(record)["payload"]))


def _sns_message(record: bytes) -> Any:
    return json.loads(json.loads(record)["Message"])


def test_the_export_message_holds_every_metric_the_stack_exports() -> None:
    (record,) = REPRESENTATIVE["detect_export"](0)
    names = [item["name"] for item in _rule_payload(record)["metrics"]]
    assert sorted(names) == sorted(_exported_metrics())
    assert len(capacity_figures.DEVICE_SIDE_EXPORTS) == capacity.DEVICE_SIDE_METRICS
    assert len(capacity_figures.CLOUD_SIDE_EXPORTS) == capacity.CLOUD_SIDE_METRICS
    assert COMMITTED["messages"]["detect_export"]["datapoints"] == len(names)


def test_the_empty_export_is_the_same_envelope_without_datapoints() -> None:
    assert _rule_payload(capacity_figures.empty_detect_export()) == {
        "version": "1.0",
        "metrics": [],
    }


def test_the_audit_notification_holds_every_check_the_stack_schedules() -> None:
    scheduled = DETECT_STACK.properties("ScheduledAudit")["TargetCheckNames"]
    (record,) = REPRESENTATIVE["audit_notification"](0)
    details = _sns_message(record)["auditDetails"]
    assert sorted(detail["checkName"] for detail in details) == sorted(scheduled)
    noncompliant = [d["checkName"] for d in details if d["nonCompliantResourcesCount"]]
    assert noncompliant == [capacity_figures.NONCOMPLIANT_CHECK]


def test_the_audit_finding_is_one_finding_of_the_audits_noncompliant_check() -> None:
    """The collector puts one record per finding, not a ListAuditFindings page."""
    (notification,) = REPRESENTATIVE["audit_notification"](0)
    (record,) = REPRESENTATIVE["audit_finding"](0)
    finding = json.loads(record)
    assert finding["checkName"] == capacity_figures.NONCOMPLIANT_CHECK
    assert finding["taskId"] == _sns_message(notification)["taskId"]


@pytest.mark.parametrize("kind", sorted(REPRESENTATIVE))
def test_n_varies_every_record(kind: str) -> None:
    """Distinct identities: no Detect datapoint, finding or log entry is a copy of another."""
    records = [record for n in range(50) for record in REPRESENTATIVE[kind](n)]
    assert len(set(records)) == len(records)


def test_the_default_buffering_is_the_stacks() -> None:
    parameters = DETECT_STACK.parameters
    defaults = capacity.Buffering()
    assert defaults.transform_mb == float(parameters["TransformBufferSizeMB"])
    assert defaults.transform_interval == float(parameters["TransformBufferIntervalSeconds"])
    assert defaults.splunk_interval == float(parameters["SplunkBufferIntervalSeconds"])
    hints = DETECT_STACK.properties("DeliveryStream")["SplunkDestinationConfiguration"]
    assert defaults.splunk_mb == hints["BufferingHints"]["SizeInMBs"]


def test_every_rule_of_the_stack_puts_one_record_per_message() -> None:
    """No Firehose action sets batchMode: one PutRecord request per matched message."""
    rules = DETECT_STACK.of_type("AWS::IoT::TopicRule")
    assert {"DetectExportRule", "DeviceReportRule", "LifecycleRule"} <= set(rules)
    for rule in rules.values():
        for action in rule["Properties"]["TopicRulePayload"]["Actions"]:
            assert not action["Firehose"].get("BatchMode", False)


def test_the_collectors_batch_is_the_models() -> None:
    """Pages of 250 findings or 100 things are buffered into full calls of the model's size
    (tests/test_collect_delivery.py shows the calls), PutRecordBatch's documented 500."""
    assert capacity.COLLECTOR_BATCH == shared_firehose.MAX_BATCH_RECORDS == 500
    largest_page = max(shared_audit.FINDINGS_PAGE_SIZE, inventory.SEARCH_PAGE_SIZE)
    assert largest_page < capacity.COLLECTOR_BATCH


def test_the_default_fleet_sources_are_the_stacks_defaults() -> None:
    defaults = Stack(load_template()).parameters
    fleet = capacity.Fleet(devices=1)
    assert fleet.detect == (defaults["EnableDetect"] == "true")
    assert fleet.device_reports == (defaults["EnableDeviceReports"] == "true")
    assert fleet.audit_frequency == defaults["AuditFrequency"]
    assert defaults["InventorySchedule"] == "rate(1 hour)"
    assert fleet.inventory_interval == 3600


def test_the_measure_command_writes_every_figure(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(capacity_figures, "ms_per_mb", lambda kind: 1.0)
    out = tmp_path / "measured.json"
    assert capacity_figures.main(["--out", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["messages"] == COMMITTED["messages"]
    assert written["transform"]["ms_per_mb"] == dict.fromkeys(REPRESENTATIVE, 1.0)
