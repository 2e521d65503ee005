"""The suite must pass whatever the shell running it holds: proxies, AWS profiles and endpoints,
the transform's own tuning variables. ``conftest._clean_environment`` promises that; this runs
a sample of the tests that each of those variables used to break, in a hostile environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HOSTILE = {
    # Loopback through an unreachable proxy: every HEC stub test would fail.
    "http_proxy": "http://127.0.0.1:9",
    "HTTP_PROXY": "http://127.0.0.1:9",
    # The transform reads these from its environment: events would gain an index, gzip refused.
    "SPLUNK_INDEX": "main",
    "MAX_DECOMPRESSED_BYTES": "1024",
    # A profile that does not exist, and an endpoint around moto.
    "AWS_PROFILE": "no-such-profile",
    "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
}
SAMPLE = [
    "tests/test_hec.py::test_send_delivers_events_in_order_and_waits_for_acks",
    "tests/test_demo.py::test_live_sends_every_event_and_reports_what_the_saved_searches_found",
    "tests/test_bad_inputs.py",
    "tests/test_transform_handler.py",
    "tests/test_shared_firehose.py::test_against_moto_every_record_is_accepted",
    "tests/test_collect_inventory.py::test_registry_inventory_lands_in_s3_and_transforms_to_thing_events",
]


def test_a_hostile_shell_environment_changes_no_outcome(tmp_path: Path) -> None:
    environment = {**os.environ, **HOSTILE, "HYPOTHESIS_EXAMPLES": "10"}
    run = subprocess.run(  # noqa: S603 - this interpreter, running pytest on the repo's own tests
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", *SAMPLE],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout
    assert "failed" not in run.stdout


# Tests that run the transform or the responder locally with their logs swapped to a sink.
LOCAL_LAMBDA_SAMPLE = [
    "tests/test_detections.py::test_dataset_is_what_the_transform_produces",
    "tests/test_respond_actions.py::test_response_records_become_the_response_events_the_datasets_hold",
]
# Two pytest sessions in one interpreter, as mutmut runs them: the exit code of each.
_TWO_SESSIONS = (
    "import sys, pytest\n"
    "args = ['-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', *sys.argv[1:]]\n"
    "print('exit codes', pytest.main(args), pytest.main(args))\n"
)


def test_a_second_pytest_session_in_the_same_process_passes_like_the_first() -> None:
    """The Lambda loggers outlive the session that imported them (conftest says why)."""
    run = subprocess.run(  # noqa: S603 - this interpreter, running pytest on the repo's own tests
        [sys.executable, "-c", _TWO_SESSIONS, *LOCAL_LAMBDA_SAMPLE],
        cwd=REPO,
        env={**os.environ, "HYPOTHESIS_EXAMPLES": "10"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.stdout.rstrip().endswith("exit codes 0 0"), run.stdout[-4000:] + run.stderr[-2000:]
