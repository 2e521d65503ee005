"""Test datasets for the detections, produced by the real transform Lambda.

Every dataset in `detections/data/` is a small story told as the AWS messages that would reach
Firehose: device-side metrics reports, Detect metrics exports, Detect alarms via SNS, audit
notifications and findings pages, IoT Core log batches (gzipped CloudWatch Logs payloads),
lifecycle events, CloudWatch metric-stream lines, inventory and response records. The
simulator's builders make those messages, Firehose's buffering packs them into invocations of
`transform.handler.lambda_handler`, and the HEC events it returns are the dataset. Nothing is
written by hand, so a change to the transform that would break a detection shows up as a
dataset diff (the tests regenerate every dataset and compare).

Timestamps are laid out relative to `REFERENCE_TIME`: days of baseline behaviour, then the
incident in the last hour. Some show what must *not* alert (a misfire a detection once had),
so their expected result count is 0. A Splunk replay shifts each dataset so that
`REFERENCE_TIME` is "now" and then runs the detection with its scheduled time range; `tests:`
in each YAML gives the result expected then (`expected.fields`: values that some result row
has). Detections that read a lookup built by a Baseline report expect that report to have run
over the dataset first, as their test names say; a test may also set macros of its own
(`macros:`), as a site would.

One module per family of datasets; `python -m appbuild.detection_data` writes them.
"""

from __future__ import annotations

from appbuild.datasets import (
    alarms,
    audits,
    authentication,
    connections,
    health,
    network,
    ports,
    response,
)
from appbuild.datasets.story import DATASETS

# Every family; importing one registers its datasets in DATASETS.
FAMILIES = (alarms, audits, authentication, connections, health, network, ports, response)

__all__ = ["DATASETS", "FAMILIES"]
