"""The subcommands of ``iot-defender-splunk``, one module each."""
