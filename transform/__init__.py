"""Firehose transform Lambda: AWS IoT security data in, sourcetyped Splunk HEC events out."""

__version__ = "0.1.0"
