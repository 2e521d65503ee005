"""The responder's settings: what the stack sets, read exactly, and a typo stops the cold start
with one line naming the variable."""

from __future__ import annotations

import pytest

from respond.settings import DEFAULT_FLEET_CAP, Settings, load_settings
from shared.settings import ConfigError

# What sam/template.yaml sets on the responder.
STACK = {
    "QUARANTINE_THING_GROUP": "iot-defender-quarantine",
    "STATE_TABLE": "iot-defender-response-state",
    "IDEMPOTENCY_TABLE": "iot-defender-response-requests",
    "DELIVERY_STREAM_NAME": "iot-defender-splunk",
}


def test_the_stacks_environment_gives_these_settings_and_the_defaults() -> None:
    assert load_settings(STACK) == Settings(
        quarantine_group="iot-defender-quarantine",
        state_table="iot-defender-response-state",
        idempotency_table="iot-defender-response-requests",
        stream_name="iot-defender-splunk",
        protected_groups=frozenset(),
        fleet_cap=DEFAULT_FLEET_CAP,
        mitigation_actions={},
        idempotency_seconds=86_400,
    )
    assert DEFAULT_FLEET_CAP == 50


def test_every_setting_is_read_trimmed() -> None:
    environ = {
        **{name: f"  {value} " for name, value in STACK.items()},
        "PROTECTED_THING_GROUPS": " plant-safety ,, line-2-plcs ,",
        "FLEET_ACTION_CAP": "10000",
        "MITIGATION_ACTIONS": '{"DEVICE_CERTIFICATE_SHARED_CHECK": "quarantine_action-1"}',
        "IDEMPOTENCY_SECONDS": "60",
    }

    settings = load_settings(environ)

    assert (settings.quarantine_group, settings.stream_name) == (
        "iot-defender-quarantine",
        "iot-defender-splunk",
    )
    assert (settings.state_table, settings.idempotency_table) == (
        "iot-defender-response-state",
        "iot-defender-response-requests",
    )
    assert settings.protected_groups == frozenset({"plant-safety", "line-2-plcs"})
    assert (settings.fleet_cap, settings.idempotency_seconds) == (10_000, 60)
    assert settings.mitigation_actions == {"DEVICE_CERTIFICATE_SHARED_CHECK": "quarantine_action-1"}


@pytest.mark.parametrize("name", sorted(STACK))
@pytest.mark.parametrize("value", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_a_variable_the_stack_sets_is_required(name: str, value: str | None) -> None:
    environ = {key: v for key, v in STACK.items() if key != name}
    if value is not None:
        environ[name] = value
    with pytest.raises(ConfigError) as caught:
        load_settings(environ)
    assert str(caught.value) == f"{name} is not set; the stack sets it on the responder"


@pytest.mark.parametrize(
    ("variable", "value", "shown"),
    [
        ("QUARANTINE_THING_GROUP", "quarantine group", "quarantine group"),
        ("QUARANTINE_THING_GROUP", "q" * 129, "q" * 40),
        ("PROTECTED_THING_GROUPS", "plant-safety, line 2", "line 2"),
        ("PROTECTED_THING_GROUPS", "plant-säfety", "plant-säfety"),
    ],
    ids=["a-space", "too-long-quoted-to-40", "one-of-several", "not-ascii"],
)
def test_a_thing_group_name_aws_would_refuse_stops_the_cold_start(
    variable: str, value: str, shown: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**STACK, variable: value})
    assert str(caught.value) == f"{variable}: {shown!r} is not a thing group name"


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("FLEET_ACTION_CAP", "0", "FLEET_ACTION_CAP: '0' is outside 1..10000"),
        ("FLEET_ACTION_CAP", "10001", "FLEET_ACTION_CAP: '10001' is outside 1..10000"),
        ("IDEMPOTENCY_SECONDS", "59", "IDEMPOTENCY_SECONDS: '59' is outside 60..2592000"),
        ("IDEMPOTENCY_SECONDS", "2592001", "IDEMPOTENCY_SECONDS: '2592001' is outside 60..2592000"),
    ],
)
def test_numbers_outside_their_bounds_stop_the_cold_start(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**STACK, variable: value})
    assert str(caught.value).startswith(says)


def test_the_bounds_themselves_are_accepted() -> None:
    low = load_settings({**STACK, "FLEET_ACTION_CAP": "1", "IDEMPOTENCY_SECONDS": "2592000"})
    assert (low.fleet_cap, low.idempotency_seconds) == (1, 30 * 86_400)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "MITIGATION_ACTIONS is not a JSON object"),
        ('["quarantine_action"]', "MITIGATION_ACTIONS must map audit check names to action names"),
        ('{"CHECK": 1}', "MITIGATION_ACTIONS must map audit check names to action names"),
        ('{"CHECK": "has space"}', "MITIGATION_ACTIONS must map audit check names to action names"),
        ('{"CHECK": ""}', "MITIGATION_ACTIONS must map audit check names to action names"),
        (
            '{"CHECK": "' + "a" * 129 + '"}',
            "MITIGATION_ACTIONS must map audit check names to action names",
        ),
    ],
    ids=["not-json", "not-an-object", "not-a-name", "a-space", "empty-name", "too-long"],
)
def test_mitigation_actions_must_map_checks_to_action_names(text: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**STACK, "MITIGATION_ACTIONS": text})
    assert str(caught.value) == says


def test_blank_mitigation_actions_are_none() -> None:
    assert load_settings({**STACK, "MITIGATION_ACTIONS": "  "}).mitigation_actions == {}
