"""Device Defender facts the tests pin the template and the app against."""

from __future__ import annotations

# Device Defender Detect's built-in metrics: 8 cloud-side, 10 device-side.
DETECT_METRICS = frozenset(
    {
        "aws:message-byte-size",
        "aws:num-messages-received",
        "aws:num-messages-sent",
        "aws:num-authorization-failures",
        "aws:source-ip-address",
        "aws:num-connection-attempts",
        "aws:num-disconnects",
        "aws:disconnect-duration",
        "aws:all-bytes-out",
        "aws:all-bytes-in",
        "aws:all-packets-out",
        "aws:all-packets-in",
        "aws:destination-ip-addresses",
        "aws:listening-tcp-ports",
        "aws:listening-udp-ports",
        "aws:num-listening-tcp-ports",
        "aws:num-listening-udp-ports",
        "aws:num-established-tcp-connections",
    }
)
