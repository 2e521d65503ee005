"""The responder Lambda: guard-railed AWS IoT response actions for SOAR playbooks.

SOAR's AWS Lambda app invokes it with one JSON request; it answers with one JSON result, acts
(or plans, for a dry run) on AWS IoT, keeps what release needs in DynamoDB, and writes an
``aws:iot:response`` record per target into the delivery stream.
"""
