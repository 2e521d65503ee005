"""One CloudWatch namespace for every function's metrics, so one dashboard and alarm set read them
all."""

from __future__ import annotations

from typing import Final

METRICS_NAMESPACE: Final = "IotDefenderSplunk"
