"""`make demo`: the simulated fleet's story. The evidence it prints is checked against the
events file it wrote (computed here independently), every incident gets its panel and its
detections, the README's pictures are what `make demo-images` draws, the response step
quarantines the open-port device on moto, and the live path sends every event and reports
what the saved searches answered (a loopback HEC and a splunkd stand-in)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from iot_defender_splunk import cli, story
from iot_defender_splunk.commands.simulate import end_argument
from iot_defender_splunk.simulator import Incident, Simulation, simulate_fleet
from iot_defender_splunk.story.detections import detection
from tests.hec_server import HecStub
from tests.splunk_rest_stub import PASSWORD, SplunkRestStub, SplunkState, installed_state
from transform.sourcetypes import RESPONSE
from transform.validation import checker

REPO = Path(__file__).resolve().parent.parent
END_TEXT = "2026-11-30T12:00:00Z"  # the Makefile's DEMO_IMAGES_END
END = end_argument(END_TEXT)
TOKEN = "00000000-0000-4000-8000-00000000d3m0"
IMAGES = REPO / "docs" / "images" / "demo"
SPLUNK_VARIABLES = (
    "SPLUNK_HEC_URL",
    "SPLUNK_HEC_TOKEN",
    "SPLUNK_URL",
    "SPLUNK_USERNAME",
    "SPLUNK_PASSWORD",
    "SPLUNK_TOKEN",
    "SPLUNK_INDEX",
)


@dataclass(frozen=True)
class Demo:
    status: int
    out: str
    err: str
    folder: Path

    def events(self, name: str = "events.ndjson") -> list[dict[str, Any]]:
        lines = (self.folder / name).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines]


def run_demo(folder: Path, *args: str, **environ: str) -> Demo:
    """The demo command at END into ``folder``, with only ``environ`` of Splunk's variables."""
    clean = {key: value for key, value in os.environ.items() if key not in SPLUNK_VARIABLES}
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, {**clean, **environ, "COLUMNS": "250"}, clear=True),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        try:
            status = cli.main(["demo", "--end", END_TEXT, "--out-dir", str(folder), *args])
        except SystemExit as usage:  # argparse's own errors: usage, one error line, exit 2
            status = int(str(usage.code))
    return Demo(status, out.getvalue(), err.getvalue(), folder)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return run_demo(tmp_path_factory.mktemp("demo"))


@cache
def simulation() -> Simulation:
    return simulate_fleet(devices=16, hours=6, seed=1, end=END)


def incident(name: str) -> Incident:
    return next(i for i in simulation().incidents if i.id == name)


def panel(demo: Demo, name: str) -> str:
    """The printed panel of one incident: from its title to its id in the bottom border."""
    start = demo.out.index(incident(name).title)
    return demo.out[start : demo.out.index(f" {name} ", start)]


def fact(text: str, label: str) -> str:
    """The value printed next to ``label`` in a panel."""
    line = next(line for line in text.splitlines() if f"│ {label}  " in line)
    return line.split(f"{label}  ", 1)[1].strip(" │")


def metric(events: list[dict[str, Any]], thing: str, name: str) -> list[tuple[float, Any]]:
    return sorted(
        (e["time"], e["event"]["value"])
        for e in events
        if e["sourcetype"] == "aws:iot:defender:metric"
        and e["host"] == thing
        and e["event"]["name"] == name
    )


def test_the_demo_succeeds_and_writes_the_events_of_the_real_transform(demo: Demo) -> None:
    assert demo.status == 0, demo.err
    events = demo.events()
    assert {e["index"] for e in events} == {"iot_security"}
    assert min(e["time"] for e in events) >= END - 6 * 3600
    assert "WARNING" not in demo.out
    assert f"{len(events):,} HEC events" in demo.out
    assert "0 failed, 0 unparsed" in demo.out


def test_every_incident_has_a_panel_with_its_detections(demo: Demo) -> None:
    for each in simulation().incidents:
        text = panel(demo, each.id)
        for device in each.device_names:
            assert device in fact(text, "device")
        for target in each.script.targets:
            spec = detection(target.detection)
            assert f"[{spec.stem}]" in text, spec.stem
            assert spec.name in text


def test_the_open_port_devices_ports_are_those_of_its_events(demo: Demo) -> None:
    camera = incident("open-port")
    (device,) = camera.device_names
    points = metric(demo.events(), device, "aws:listening-tcp-ports")
    before = {p for t, value in points if t < camera.start for p in value["ports"]}
    after = set(points[-1][1]["ports"])
    assert {21, 23} <= after
    assert not {21, 23} & before
    text = panel(demo, "open-port")
    assert fact(text, "listening tcp before") == ", ".join(map(str, sorted(before)))
    assert fact(text, "listening tcp at the end") == ", ".join(map(str, sorted(after)))
    first_21 = min(t for t, value in points if 21 in value["ports"])
    assert fact(text, "when").startswith(f"first seen {_utc(first_21)}")


def _utc(t: float) -> str:
    import datetime as dt  # noqa: PLC0415

    return f"{dt.datetime.fromtimestamp(t, dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def test_the_exfiltration_figures_are_the_gateways_bytes_against_its_own_baseline(
    demo: Demo,
) -> None:
    gateway = incident("exfiltration")
    (device,) = gateway.device_names
    points = [(t, v["count"]) for t, v in metric(demo.events(), device, "aws:all-bytes-out")]
    baseline = [v for t, v in points if t < gateway.start]
    window = [v for t, v in points if t >= gateway.start]
    mean, sd = statistics.fmean(baseline), statistics.stdev(baseline)
    ratio = statistics.fmean(window) / mean
    text = panel(demo, "exfiltration")
    clock = _utc(gateway.start)[11:16]
    assert fact(text, f"bytes out before {clock}").startswith(
        f"mean {mean:,.0f} +- {sd:,.0f} bytes per 5 min ({len(baseline)} datapoints)"
    )
    during = fact(text, f"bytes out from {clock}")
    assert (
        during == f"mean {statistics.fmean(window):,.0f} bytes per 5 min, {ratio:.1f}x its baseline"
    )
    assert ratio > 20
    above = sum(v > mean + 3 * sd for v in window)
    assert fact(text, "above mean + 3 sd") == f"{above} of {len(window)} datapoints"


def test_the_storms_failures_are_counted_from_the_log_events(demo: Demo) -> None:
    failures = [
        e["event"]["sourceIp"]
        for e in demo.events()
        if e["sourcetype"] == "aws:iot:log" and e["event"]["eventType"] == "Connection.AuthNError"
    ]
    storm = failures.count("192.0.2.250")
    assert storm == 240
    assert fact(panel(demo, "auth-storm"), "192.0.2.250").startswith(f"{storm} failures")


def test_the_cloned_certificates_addresses_are_those_of_its_connects(demo: Demo) -> None:
    pump = incident("cloned-certificate")
    (device,) = pump.devices
    connects = [
        e["event"]["ipAddress"]
        for e in demo.events()
        if e["sourcetype"] == "aws:iot:lifecycle"
        and e["event"]["eventType"] == "connected"
        and e["event"]["principalIdentifier"] == device.certificate
        and e["time"] >= pump.start
    ]
    clock = _utc(pump.start)[11:16]
    shown = fact(panel(demo, "cloned-certificate"), f"addresses from {clock}")
    assert shown.startswith(f"{len(set(connects))} (")
    assert shown.endswith(f" new), {len(connects)} connects")
    assert len(set(connects)) == 4


def test_rules_applied_locally_say_would_fire_on_the_incidents_subject(demo: Demo) -> None:
    assert "rule applied locally" in demo.out.replace("\n", " ")
    lines = demo.out.splitlines()

    def verdict(stem: str) -> str:
        return next(line for line in lines if f"[{stem}]" in line)

    assert "would fire on cam-0001" in verdict("risky_port_listening")
    assert "would fire on gw-0001" in verdict("outbound_volume_spike_vs_device_baseline")
    assert "would fire on 192.0.2.250" in verdict("authentication_error_burst_from_source_ip")
    assert "needs 26 h of history" in verdict("new_listening_port_on_device_inline_baseline")
    assert "no local rule" in verdict("audit_iot_logging_disabled")


def test_one_picture_per_incident_and_the_readmes_are_what_make_demo_images_draws(
    demo: Demo,
) -> None:
    pytest.importorskip("matplotlib")
    drawn = sorted(path.name for path in demo.folder.glob("*.png"))
    assert drawn == sorted(f"{i.id}.png" for i in simulation().incidents)
    for name in drawn:
        assert (demo.folder / name).read_bytes() == (IMAGES / name).read_bytes(), (
            f"docs/images/demo/{name} is stale: run make demo-images"
        )


def test_the_response_step_quarantines_the_open_port_device_and_audits_it(demo: Demo) -> None:
    pytest.importorskip("moto")
    (device,) = incident("open-port").device_names
    response = demo.out[demo.out.index("Response: IoT Open Port Response") :]
    assert "iot-defender-splunk-quarantine" not in fact(response, "groups before")
    assert "iot-defender-splunk-quarantine" in fact(response, "groups after")
    assert fact(response, "certificate") == "ACTIVE -> INACTIVE"
    (audit,) = demo.events("response.ndjson")
    assert audit["sourcetype"] == RESPONSE
    assert audit["index"] == "iot_security"
    assert checker("response")(audit["event"]) is None
    body = audit["event"]
    assert (body["action"], body["status"]) == ("quarantine_thing", "SUCCEEDED")
    assert body["target"]["thingName"] == device
    assert body["requestedBy"] == "soar:iot_open_port_response:auto-approved"
    assert "listens on tcp/23 (critical)" in body["reason"]
    assert body["details"]["after"]["quarantined"] is True
    assert body["details"]["before"]["quarantined"] is False


@contextlib.contextmanager
def splunk(state: SplunkState) -> Iterator[tuple[HecStub, SplunkRestStub]]:
    """A HEC and the Splunk behind it: what the HEC indexed is what searches find."""
    with HecStub(token=TOKEN, use_ack=True) as hec, SplunkRestStub(state, hec=hec) as rest:
        yield hec, rest


def test_live_sends_every_event_and_reports_what_the_saved_searches_found(
    tmp_path: Path,
) -> None:
    risky = detection("risky_port_listening").name
    state = installed_state("0.1.0")
    state.saved_search_results = {risky: [{"thing": "cam-0001"}]}
    with splunk(state) as (hec, rest):
        demo = run_demo(
            tmp_path,
            SPLUNK_HEC_URL=hec.url,
            SPLUNK_HEC_TOKEN=TOKEN,
            SPLUNK_URL=rest.url,
            SPLUNK_USERNAME="admin",
            SPLUNK_PASSWORD=PASSWORD,
        )
        received = hec.events
        dispatched = [r.params() for r in rest.requests if r.path.endswith("/dispatch")]
    assert demo.status == 0, demo.err
    written = demo.events() + demo.events("response.ndjson")
    assert received == written
    assert f"sent {len(written):,} events" in demo.out
    assert "acknowledged by the indexers" in demo.out
    pipeline = len(demo.events())  # the response event is stamped now, outside the window
    assert f"Splunk: {pipeline:,} of the {pipeline:,} events searchable" in demo.out
    assert f"open-port: {risky}: fired in Splunk, 1 result(s) on cam-0001" in demo.out
    auth = detection("authentication_error_burst_from_source_ip").name
    assert f"auth-storm: {auth}: did not fire in Splunk" in demo.out
    assert {r["dispatch.now"] for r in dispatched} == {f"{END:.0f}"}
    assert {r["trigger_actions"] for r in dispatched} == {"0"}
    stems = {t.detection for i in simulation().incidents for t in i.script.targets}
    assert len(dispatched) == len(stems), "each detection runs once"
    assert "WARNING" not in demo.out


def test_an_index_the_macro_does_not_search_is_warned_about(tmp_path: Path) -> None:
    state = installed_state("0.1.0")
    state.macros["iot_defender_index"] = "(index=iot_security OR index=iot_lab)"
    with splunk(state) as (hec, rest):
        demo = run_demo(
            tmp_path,
            SPLUNK_INDEX="iot_ops",
            SPLUNK_HEC_URL=hec.url,
            SPLUNK_HEC_TOKEN=TOKEN,
            SPLUNK_URL=rest.url,
            SPLUNK_USERNAME="admin",
            SPLUNK_PASSWORD=PASSWORD,
        )
    assert demo.status == 0, demo.err
    assert {e["index"] for e in demo.events()} == {"iot_ops"}
    warnings = [line for line in demo.out.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 2, "the app's shipped macro and Splunk's"
    assert (
        "Splunk's iot_defender_index macro searches (index=iot_security OR index=iot_lab)"
        in (warnings[1])
    )


def test_a_refused_splunk_login_is_one_line(tmp_path: Path) -> None:
    with SplunkRestStub(installed_state("0.1.0")) as rest:
        demo = run_demo(
            tmp_path, SPLUNK_URL=rest.url, SPLUNK_USERNAME="admin", SPLUNK_PASSWORD="wrong"
        )
    assert demo.status == 1
    assert demo.err.count("\n") == 1
    assert "cannot log in to Splunk" in demo.err


def test_a_refused_hec_token_is_one_line(tmp_path: Path) -> None:
    with HecStub(token=TOKEN) as hec:
        demo = run_demo(tmp_path, SPLUNK_HEC_URL=hec.url, SPLUNK_HEC_TOKEN="wrong-token")
    assert demo.status == 1
    assert "Invalid token" in demo.err
    assert demo.err.count("\n") == 1


def test_without_the_demo_extra_it_says_what_to_install_and_still_tells_the_story(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(sys.modules):
        if name.partition(".")[0] in {"matplotlib", "moto"}:
            monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    for name in ("matplotlib", "moto"):
        monkeypatch.setitem(sys.modules, name, None)
    for name in ("plots", "respond_step"):  # imported afresh, as in a venv without the extra
        monkeypatch.delitem(sys.modules, f"{story.__name__}.{name}", raising=False)
        monkeypatch.delattr(story, name, raising=False)

    demo = run_demo(tmp_path)

    assert demo.status == 0, demo.err
    assert "no pictures: install iot-defender-splunk[demo] for the plots" in demo.out
    assert "no response step: it needs iot-defender-splunk[demo] (moto)" in demo.out
    assert "Traceback" not in demo.out + demo.err
    assert not list(tmp_path.glob("*.png"))
    assert (tmp_path / "response.ndjson").read_bytes() == b""
    assert incident("open-port").title in demo.out


def test_the_installed_command_run_outside_the_checkout_still_runs_the_response_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.venv/bin/iot-defender-splunk demo` has the bin folder, not the checkout, on its path."""
    root = Path(__file__).resolve().parents[1]
    monkeypatch.setattr(sys, "path", [p for p in sys.path if Path(p or ".").resolve() != root])
    monkeypatch.chdir(tmp_path)
    for name in list(sys.modules):
        if name == "respond" or name.startswith(("respond.", f"{story.__name__}.respond_step")):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.delattr(story, "respond_step", raising=False)

    demo = run_demo(tmp_path / "demo", "--devices", "4", "--hours", "2")

    assert demo.status == 0, demo.err
    assert "no response step" not in demo.out
    (audit,) = [json.loads(line) for line in (tmp_path / "demo" / "response.ndjson").open()]
    assert audit["sourcetype"] == RESPONSE


@pytest.mark.parametrize(
    ("args", "environ", "message"),
    [
        (["--devices", "0"], {}, "--devices: must be between 1"),
        (["--hours", "lots"], {}, "--hours: 'lots' is not a number of hours"),
        (["--end", "yesterday"], {}, "--end: 'yesterday' is not an ISO-8601 time"),
        ([], {"SPLUNK_INDEX": "Bad Index!"}, "SPLUNK_INDEX"),
        ([], {"SPLUNK_HEC_URL": "http://127.0.0.1:1"}, "set both SPLUNK_HEC_URL and"),
        ([], {"SPLUNK_URL": "https://127.0.0.1:8089"}, "SPLUNK_URL needs SPLUNK_USERNAME"),
    ],
    ids=["devices", "hours", "end", "index", "hec-token", "splunk-credentials"],
)
def test_mistakes_are_one_line_and_a_non_zero_exit_before_any_work(
    tmp_path: Path, args: list[str], environ: dict[str, str], message: str
) -> None:
    folder = tmp_path / "out"
    demo = run_demo(folder, *args, **environ)
    assert demo.status != 0
    errors = [line for line in demo.err.splitlines() if "error:" in line]
    assert len(errors) == 1, demo.err
    assert message in errors[0]
    assert "Traceback" not in demo.err
    assert not folder.exists(), "nothing was written"
