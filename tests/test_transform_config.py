"""Settings from the environment: valid values are used, invalid ones fail loudly at cold start."""

from __future__ import annotations

import pytest

from transform.config import ConfigError, Settings, load_settings


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.index_for("aws:iot:log") is None
    assert settings.response_limit_bytes == 6_000_000


def test_index_and_overrides() -> None:
    settings = load_settings(
        {
            "SPLUNK_INDEX": "iot_security",
            "SPLUNK_INDEX_OVERRIDES": " aws:iot:log = iot_logs , aws:iot:thing=iot_inventory,",
        }
    )
    assert settings.index_for("aws:iot:defender:metric") == "iot_security"
    assert settings.index_for("aws:iot:log") == "iot_logs"
    assert settings.index_for("aws:iot:thing") == "iot_inventory"


def test_numbers() -> None:
    settings = load_settings(
        {
            "MAX_FUTURE_SKEW_SECONDS": "600",
            "MAX_REINGEST_ATTEMPTS": "5",
            "MAX_DECOMPRESSED_BYTES": "4096",
        }
    )
    assert settings.max_future_skew_seconds == 600.0
    assert settings.max_reingest_attempts == 5
    assert settings.max_decompressed_bytes == 4096


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SPLUNK_INDEX": "Main"}, "SPLUNK_INDEX: 'Main' is not a valid Splunk index name"),
        ({"SPLUNK_INDEX": "_internal"}, "not a valid Splunk index name"),
        ({"SPLUNK_INDEX_OVERRIDES": "aws:iot:log"}, "is not sourcetype=index"),
        ({"SPLUNK_INDEX_OVERRIDES": "aws:nope=x"}, "unknown sourcetype 'aws:nope'"),
        ({"SPLUNK_INDEX_OVERRIDES": "aws:iot:log=bad index"}, "not a valid Splunk index name"),
        ({"MAX_REINGEST_ATTEMPTS": "0"}, "MAX_REINGEST_ATTEMPTS: '0' is outside 1..20"),
        ({"MAX_REINGEST_ATTEMPTS": "2.9"}, "MAX_REINGEST_ATTEMPTS: '2.9' is not a whole number"),
        ({"MAX_FUTURE_SKEW_SECONDS": "soon"}, "MAX_FUTURE_SKEW_SECONDS: 'soon' is not a number"),
        (
            {"MAX_FUTURE_SKEW_SECONDS": "inf"},
            "MAX_FUTURE_SKEW_SECONDS: 'inf' is outside 0..2592000",
        ),
    ],
)
def test_invalid_settings_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        load_settings(environ)
