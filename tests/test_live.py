"""tests/live.py: the live suites warn, loudly and only when enabled, what they change."""

from __future__ import annotations

import warnings

import pytest

from tests.live import REQUIRED, LiveSplunkWarning, enabled, warn_of_changes

CONFIGURED = dict.fromkeys(REQUIRED, "set")


def test_enabled_suites_warn_that_they_change_the_splunk() -> None:
    with pytest.warns(LiveSplunkWarning) as caught:
        warn_of_changes(CONFIGURED)
    [warning] = caught
    text = str(warning.message)
    assert text.startswith("LIVE SPLUNK SUITE ENABLED")
    assert "use a throwaway one" in text
    # What test_live_detections changes: the indexes it leaves and the macro it restores.
    assert "creates one index per detection test, iot_<run id>_t<n>_<detection>" in text
    assert "iot_defender_index macro" in text
    assert "put back as it was" in text


@pytest.mark.parametrize("missing", REQUIRED)
def test_suites_missing_a_setting_are_skipped_without_a_warning(missing: str) -> None:
    environ = CONFIGURED | {missing: ""}
    assert not enabled(environ)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_of_changes(environ)


def test_all_settings_enable_the_suites() -> None:
    assert enabled(CONFIGURED)
    assert not enabled({})
