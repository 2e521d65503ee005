"""Collectors: Lambdas that read AWS IoT APIs and put what they find into the pipeline's Firehose.

They produce records the transform decodes (audit findings, thing inventory), so Splunk sees
API-only data through the same sourcetypes, settings and delivery guarantees as everything else.
"""
