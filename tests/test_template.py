"""sam/template.yaml: what the stack creates, for each switch, and how safely.

cfn-lint, `sam validate --lint` and checkov run in `make template-lint`; these tests assert the
project's own promises that no linter knows about.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
import tomllib
from typing import Any

import pytest

from collect.checkpoint import CHECKPOINT_TABLE_ENV, KEY_ATTRIBUTE, TTL_ATTRIBUTE
from collect.continuation import DEFAULT_MAX_SLICES, MAX_SLICES_ENV
from devtools.cfn_template import (
    TEMPLATE_PATH,
    Stack,
    as_list,
    load_template,
    statements,
    switch_combinations,
)
from devtools.readme_tables import README, rendered_readme
from iot_defender_splunk import capacity
from respond.settings import load_settings as load_responder_settings
from shared.catalog import audit_check
from tests.device_defender import DETECT_METRICS
from transform.decoders.rule_envelope import ROUTES
from transform.validation import checker

REPO = TEMPLATE_PATH.parent.parent
TEMPLATE = load_template()

DETECT_TYPES = {"AWS::IoT::SecurityProfile"}
DETECT_RESOURCES = {
    "DetectExportRule",
    "MetricsExportRole",
    "DetectAlertTopic",
    "DetectAlertRole",
    "DetectAlertSubscription",
    "RuleSecurityProfile",
    "MlSecurityProfile",
}

# Actions that accept no narrower resource than "*" (IAM service authorization reference):
# account-level reads/settings of AWS IoT. Every other Allow names the stack's own resources.
ACCOUNT_LEVEL_ACTIONS = {
    "iot:ListAuditFindings",  # Device Defender audit: no resource type
    "iot:GetIndexingConfiguration",  # account fleet-indexing settings
    "iot:ListThings",  # list operation, no resource type
    "iot:SetV2LoggingOptions",  # account logging setting
    "iot:DescribeEndpoint",  # the account's data endpoint (for DeleteConnection)
    "iot:DescribeAuditFinding",  # Device Defender audit: no resource type
}


def stack(**parameters: str) -> Stack:
    return Stack(TEMPLATE, **parameters)


def test_default_deployment_is_the_detect_free_pipeline() -> None:
    resources = stack().resources
    assert not DETECT_RESOURCES & set(resources)
    assert not any(r["Type"] in DETECT_TYPES for r in resources.values())
    for source in ("DeviceReportRule", "LifecycleRule", "IotLogsSubscription", "IotMetricStream"):
        assert source in resources
    assert {"AuditTopic", "AuditFindingsFunction", "ScheduledAudit", "InventoryFunction"} <= set(
        resources
    )


def test_enable_detect_adds_exactly_the_detect_resources() -> None:
    without = set(stack(EnableDetect="false").resources)
    with_detect = set(stack(EnableDetect="true").resources)
    assert with_detect - without == DETECT_RESOURCES
    assert without <= with_detect


def test_ml_profile_only_with_detect() -> None:
    assert "MlSecurityProfile" not in stack(EnableDetect="false", EnableMlDetect="true").resources
    assert "MlSecurityProfile" not in stack(EnableDetect="true", EnableMlDetect="false").resources


def test_every_switch_combination_references_only_what_exists() -> None:
    """A resource that outlives the condition of something it references fails deployment."""
    problems = {
        json.dumps(switches): dangling
        for switches in switch_combinations(TEMPLATE)
        if (dangling := Stack(TEMPLATE, **switches).dangling_references())
    }
    assert problems == {}


def test_reference_check_catches_a_resource_missing_its_condition() -> None:
    broken = copy.deepcopy(TEMPLATE)
    del broken["Resources"]["AuditTopicSubscription"]["Condition"]
    assert Stack(broken, EnableAudit="false").dangling_references() == [
        "AuditTopicSubscription -> AuditTopic"
    ]


# --- Delivery ----------------------------------------------------------------------------------


def splunk_destination(s: Stack | None = None) -> dict[str, Any]:
    destination: dict[str, Any] = (s or stack()).properties("DeliveryStream")[
        "SplunkDestinationConfiguration"
    ]
    return destination


SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:splunk-hec-AbCdEf"


def test_hec_token_comes_from_secrets_manager_never_plain_text() -> None:
    destination = splunk_destination(stack(SplunkHecTokenSecretArn=SECRET_ARN))
    assert destination["SecretsManagerConfiguration"] == {
        "Enabled": True,
        "SecretARN": SECRET_ARN,
        "RoleARN": {"Fn::GetAtt": ["DeliveryRole", "Arn"]},
    }
    assert "HECToken" not in destination
    assert "resolve:secretsmanager" not in TEMPLATE_PATH.read_text(encoding="utf-8")
    secret_param = TEMPLATE["Parameters"]["SplunkHecTokenSecretArn"]
    assert "Default" not in secret_param
    assert re.match(secret_param["AllowedPattern"], "my-plain-token") is None


def test_splunk_destination_is_event_endpoint_with_retries_backup_and_logging() -> None:
    destination = splunk_destination()
    assert destination["HECEndpointType"] == "Event"
    assert destination["S3BackupMode"] == "FailedEventsOnly"
    assert destination["RetryOptions"]["DurationInSeconds"] >= 3600
    assert 180 <= destination["HECAcknowledgmentTimeoutInSeconds"] <= 600
    tuned = splunk_destination(
        stack(SplunkRetryDurationSeconds="7200", HecAcknowledgmentTimeoutSeconds="600")
    )
    assert tuned["RetryOptions"] == {"DurationInSeconds": "7200"}
    assert tuned["HECAcknowledgmentTimeoutInSeconds"] == "600"
    assert destination["CloudWatchLoggingOptions"]["Enabled"] is True
    assert destination["S3Configuration"]["CloudWatchLoggingOptions"]["Enabled"] is True
    assert destination["S3Configuration"]["BucketARN"] == {"Fn::GetAtt": ["BackupBucket", "Arn"]}


def test_transform_lambda_is_the_processor_with_tuned_buffers() -> None:
    processing = splunk_destination(
        stack(TransformBufferSizeMB="0.5", TransformBufferIntervalSeconds="30")
    )["ProcessingConfiguration"]
    assert processing["Enabled"] is True
    (processor,) = processing["Processors"]
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert processor["Type"] == "Lambda"
    assert parameters["LambdaArn"] == {"Fn::GetAtt": ["TransformFunction", "Arn"]}
    assert parameters["BufferSizeInMBs"] == "0.5"
    assert parameters["BufferIntervalInSeconds"] == "30"
    # A full batch of the kind that grows most (measured: HEC bytes per input byte) must answer
    # within Lambda's 6 MB response, base64-encoded, at the default buffer size.
    figures = capacity.figures()["messages"]
    growth = max(kind["hec_bytes"] / kind["record_bytes"] for kind in figures.values())
    default_bytes = TEMPLATE["Parameters"]["TransformBufferSizeMB"]["Default"] * 1_048_576
    assert default_bytes * growth * 4 / 3 <= 6_000_000


def test_stream_is_encrypted_with_the_stack_key() -> None:
    props = stack().properties("DeliveryStream")
    assert props["DeliveryStreamType"] == "DirectPut"
    assert props["DeliveryStreamEncryptionConfigurationInput"] == {
        "KeyType": "CUSTOMER_MANAGED_CMK",
        "KeyARN": {"Fn::GetAtt": ["PipelineKey", "Arn"]},
    }


def test_backup_bucket_is_encrypted_versioned_tls_only_and_expires() -> None:
    s = stack(BackupRetentionDays="90")
    bucket = s.properties("BackupBucket")
    (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    (lifecycle,) = bucket["LifecycleConfiguration"]["Rules"]
    assert lifecycle["ExpirationInDays"] == "90"
    assert "NoncurrentVersionExpiration" in lifecycle
    policy = s.properties("BackupBucketPolicy")["PolicyDocument"]["Statement"]
    tls = [st for st in policy if st["Condition"].get("Bool", {}).get("aws:SecureTransport")]
    assert tls == [
        {
            "Sid": "DenyPlainHttp",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [
                {"Fn::GetAtt": ["BackupBucket", "Arn"]},
                {"Fn::Sub": "${BackupBucket.Arn}/*"},
            ],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ]
    assert s.resources["BackupBucket"]["DeletionPolicy"] == "Retain"


def test_every_log_group_has_retention_and_the_stack_key() -> None:
    groups = stack(LogRetentionDays="90").of_type("AWS::Logs::LogGroup")
    assert len(groups) >= 6
    for name, group in groups.items():
        props = group["Properties"]
        assert props["RetentionInDays"] == "90", name
        assert props["KmsKeyId"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}, name


def test_every_function_logs_to_its_own_log_group_on_the_lambda_runtime() -> None:
    globals_ = TEMPLATE["Globals"]["Function"]
    assert globals_["Runtime"] == "python3.13"
    assert globals_["Architectures"] == ["arm64"]
    for name, function in stack().of_type("AWS::Serverless::Function").items():
        props = function["Properties"]
        log_group = props["LoggingConfig"]["LogGroup"]["Ref"]
        assert stack().resources[log_group]["Type"] == "AWS::Logs::LogGroup", name
        assert function["Metadata"]["BuildMethod"] == "makefile", name


def test_transform_settings_reach_the_function() -> None:
    env = stack(SplunkIndex="iot_security").properties("TransformFunction")["Environment"]
    assert env["Variables"]["SPLUNK_INDEX"] == "iot_security"
    assert env["Variables"]["SPLUNK_INDEX_OVERRIDES"] == ""


# --- Sources -----------------------------------------------------------------------------------


def test_every_iot_rule_has_an_error_action_and_puts_into_the_stream() -> None:
    rules = stack(EnableDetect="true").of_type("AWS::IoT::TopicRule")
    assert set(rules) == {"DetectExportRule", "DeviceReportRule", "LifecycleRule"}
    for name, rule in rules.items():
        payload = rule["Properties"]["TopicRulePayload"]
        assert "CloudwatchLogs" in payload["ErrorAction"], name
        (action,) = payload["Actions"]
        assert action["Firehose"]["DeliveryStreamName"] == {"Ref": "DeliveryStream"}, name


# What each rule's SQL must select: its route literal, the whole message base64, and what the
# rule adds; nothing a client publishes can reach the record outside that base64 payload.
RULE_SQL = re.compile(
    r"SELECT '(?P<route>[a-z-]+)' AS route, encode\(\*, 'base64'\) AS payload"
    r"(?P<added>(?:, [a-z_]+\([^)]*\) AS [a-z_]+)*) FROM '(?P<topic>[^']+)'"
)
RULE_ROUTE = {"DetectExportRule": "detect-export", "DeviceReportRule": "device-report"}
RULE_ROUTE["LifecycleRule"] = "lifecycle"


def rule_sql(name: str) -> re.Match[str]:
    sql = stack(EnableDetect="true").properties(name)["TopicRulePayload"]["Sql"]
    text = sql["Fn::Sub"] if isinstance(sql, dict) else sql
    match = RULE_SQL.fullmatch(text)
    assert match, text
    return match


@pytest.mark.parametrize("name", sorted(RULE_ROUTE))
def test_every_rule_wraps_the_message_in_a_record_naming_its_route(name: str) -> None:
    """The attack: SELECT * lets a client write every key, and so choose the kind and source."""
    match = rule_sql(name)
    assert match["route"] == RULE_ROUTE[name]
    assert set(RULE_ROUTE.values()) == set(ROUTES)  # the routes the transform decodes
    added = dict(re.findall(r", ([a-z_]+\([^)]*\)) AS ([a-z_]+)", match["added"]))
    expected = {"device-report": {"topic(${DeviceReportThingNameSegment})", "timestamp()"}}
    assert set(added) == expected.get(match["route"], set())


def test_the_rules_records_are_what_the_envelope_schema_accepts() -> None:
    """The keys each rule selects are exactly the keys transform/schemas/rule_envelope.json
    allows for its route (additionalProperties false, per-route required keys)."""
    check = checker("rule_envelope")
    for name, route in RULE_ROUTE.items():
        keys = ["route", "payload", *re.findall(r" AS ([a-z_]+)", rule_sql(name)["added"])]
        record: dict[str, object] = {str(key): "e30=" for key in keys}
        record["route"] = route
        if "thing_name" in record:
            record |= {"thing_name": "pump-0017", "received_at": 1_795_165_646_902}
        assert check(record) is None, (name, check(record))


def test_device_report_thing_name_is_the_topic_wildcard_segment() -> None:
    params = TEMPLATE["Parameters"]
    default_filter = params["DeviceReportTopicFilter"]["Default"]
    segment = params["DeviceReportThingNameSegment"]["Default"]
    assert default_filter.split("/")[segment - 1] == "+"  # the thing-name segment is the wildcard


def test_lifecycle_rule_reads_presence_events() -> None:
    assert rule_sql("LifecycleRule")["topic"] == "$aws/events/presence/#"


def test_detect_profile_covers_the_open_port_and_exfiltration_story() -> None:
    props = stack(EnableDetect="true").properties("RuleSecurityProfile")
    behaviors = {b["Metric"]: b for b in props["Behaviors"]}
    expected = {
        "aws:listening-tcp-ports": "not-in-port-set",
        "aws:listening-udp-ports": "not-in-port-set",
        "aws:num-listening-tcp-ports": "greater-than",
        "aws:all-bytes-out": "greater-than",
        "aws:all-packets-out": "greater-than",
        "aws:destination-ip-addresses": "not-in-cidr-set",
        "aws:num-authorization-failures": "greater-than",
        "aws:num-connection-attempts": "greater-than",
        "aws:num-disconnects": "greater-than",
    }
    for metric, operator in expected.items():
        assert behaviors[metric]["Criteria"]["ComparisonOperator"] == operator, metric
    assert behaviors["aws:listening-tcp-ports"]["Criteria"]["Value"] == {
        "Ports": "443,8883"  # List<Number> default; CloudFormation passes the list
    }
    export_topic = props["MetricsExportConfig"]["MqttTopic"]
    assert export_topic == {"Fn::Sub": "$aws/rules/${DetectExportRule}"}
    assert props["AlertTargets"]["SNS"]["AlertTargetArn"] == {"Ref": "DetectAlertTopic"}


def test_every_detect_metric_is_exported() -> None:
    props = stack(EnableDetect="true").properties("RuleSecurityProfile")
    exported = [b["Metric"] for b in props["Behaviors"] if b["ExportMetric"] is True]
    retained = [m["Metric"] for m in props["AdditionalMetricsToRetainV2"] if m["ExportMetric"]]
    assert len(exported) == len(props["Behaviors"])
    assert not set(exported) & set(retained)  # a metric is either a behavior or retained
    assert set(exported) | set(retained) == DETECT_METRICS


def test_ml_profile_uses_only_metrics_ml_detect_supports() -> None:
    props = stack(EnableDetect="true").properties("MlSecurityProfile")
    ml_supported = {
        "aws:num-authorization-failures",
        "aws:num-connection-attempts",
        "aws:num-disconnects",
        "aws:message-byte-size",
        "aws:num-messages-received",
        "aws:num-messages-sent",
        "aws:all-bytes-out",
        "aws:all-bytes-in",
        "aws:all-packets-out",
        "aws:all-packets-in",
        "aws:num-listening-tcp-ports",
        "aws:num-listening-udp-ports",
        "aws:num-established-tcp-connections",
    }
    metrics = {b["Metric"] for b in props["Behaviors"]}
    assert metrics == ml_supported
    assert all("MlDetectionConfig" in b["Criteria"] for b in props["Behaviors"])


def test_detect_targets_a_group_when_one_is_named() -> None:
    everyone = stack(EnableDetect="true").properties("RuleSecurityProfile")["TargetArns"]
    group = stack(EnableDetect="true", DetectThingGroupName="cameras").properties(
        "RuleSecurityProfile"
    )["TargetArns"]
    assert everyone[0]["Fn::Sub"].endswith(":all/registered-things")
    assert group[0]["Fn::Sub"].endswith(":thinggroup/${DetectThingGroupName}")


def test_sns_topics_are_subscribed_to_the_stream() -> None:
    subscriptions = stack(EnableDetect="true").of_type("AWS::SNS::Subscription")
    firehose = {
        s["Properties"]["TopicArn"]["Ref"]
        for s in subscriptions.values()
        if s["Properties"]["Protocol"] == "firehose"
    }
    assert firehose == {"DetectAlertTopic", "AuditTopic"}


def test_audit_enables_every_check_with_notifications_and_a_daily_schedule() -> None:
    s = stack()
    config = s.properties("AuditConfiguration")
    checks = config["AuditCheckConfigurations"]
    assert len(checks) == 17
    assert all(check["Enabled"] is True for check in checks.values())
    assert checks["DeviceCertificateAgeCheck"]["Configuration"] == {"CertAgeThresholdInDays": 365}
    assert config["AuditNotificationTargetConfigurations"]["Sns"]["Enabled"] is True
    schedule = s.properties("ScheduledAudit")
    assert schedule["Frequency"] == "DAILY"
    assert "DayOfWeek" not in schedule
    assert len(schedule["TargetCheckNames"]) == 17
    assert all(audit_check(name) for name in schedule["TargetCheckNames"])


def test_age_check_can_be_switched_off_in_config_and_schedule() -> None:
    s = stack(EnableDeviceCertificateAgeCheck="false")
    assert (
        s.properties("AuditConfiguration")["AuditCheckConfigurations"]["DeviceCertificateAgeCheck"][
            "Enabled"
        ]
        is False
    )
    assert "DEVICE_CERTIFICATE_AGE_CHECK" not in s.properties("ScheduledAudit")["TargetCheckNames"]


def test_weekly_audit_gets_its_day() -> None:
    schedule = stack(AuditFrequency="WEEKLY").properties("ScheduledAudit")
    assert schedule["DayOfWeek"] == "MON"
    assert "DayOfMonth" not in schedule


def test_account_singletons_are_optional() -> None:
    unmanaged = stack(ManageAuditConfiguration="false", ManageIotLogging="false")
    types = {r["Type"] for r in unmanaged.resources.values()}
    assert "AWS::IoT::AccountAuditConfiguration" not in types
    assert "AWS::IoT::Logging" not in types
    assert "IotLogGroup" not in unmanaged.resources
    # The pipeline still reads the existing AWSIotLogsV2 group and still schedules audits.
    assert unmanaged.properties("IotLogsSubscription")["LogGroupName"] == "AWSIotLogsV2"
    assert "ScheduledAudit" in unmanaged.resources
    managed = stack()
    assert managed.properties("IotLogging")["DefaultLogLevel"] == "ERROR"
    assert managed.properties("IotLogsSubscription")["LogGroupName"] == {"Ref": "IotLogGroup"}
    assert managed.properties("IotLogGroup")["LogGroupName"] == "AWSIotLogsV2"


def test_metric_stream_sends_the_aws_iot_namespace_as_json() -> None:
    props = stack().properties("IotMetricStream")
    assert props["OutputFormat"] == "json"
    assert props["IncludeFilters"] == [{"Namespace": "AWS/IoT"}]
    assert props["FirehoseArn"] == {"Fn::GetAtt": ["DeliveryStream", "Arn"]}


# --- Collectors --------------------------------------------------------------------------------


def test_audit_collector_is_triggered_by_the_audit_topic() -> None:
    props = stack().properties("AuditFindingsFunction")
    assert props["Events"]["AuditNotification"] == {
        "Type": "SNS",
        "Properties": {"Topic": {"Ref": "AuditTopic"}},
    }
    assert props["Environment"]["Variables"]["DELIVERY_STREAM_NAME"] == {"Ref": "DeliveryStream"}
    assert props["DeadLetterQueue"]["TargetArn"] == {
        "Fn::GetAtt": ["CollectorDeadLetterQueue", "Arn"]
    }


def test_inventory_collector_runs_hourly_by_default() -> None:
    props = stack().properties("InventoryFunction")
    (event,) = props["Events"].values()
    assert event["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert props["Environment"]["Variables"]["MAX_GROUP_LOOKUPS"] == 1000


COLLECTORS = {
    "AuditFindingsFunction": ("AuditFindingsRole", "audit-findings"),
    "InventoryFunction": ("InventoryRole", "inventory"),
}


@pytest.mark.parametrize("function", sorted(COLLECTORS))
def test_each_collector_may_read_and_write_only_its_checkpoints_and_invoke_only_itself(
    function: str,
) -> None:
    role, name = COLLECTORS[function]
    statements = _responder_statements(role)
    assert statements["OwnCheckpoints"]["Action"] == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert statements["OwnCheckpoints"]["Resource"] == {
        "Fn::GetAtt": ["CollectorCheckpointTable", "Arn"]
    }
    invoke = statements["ContinueInNextSlice"]
    assert invoke["Action"] == "lambda:InvokeFunction"
    own_name = stack().properties(function)["FunctionName"]["Fn::Sub"]
    assert own_name == f"${{AWS::StackName}}-{name}"
    assert invoke["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:"
        + own_name
    }
    props = stack().properties(function)
    assert props["RecursiveLoop"] == "Allow"  # else Lambda stops the chain after 16 slices
    variables = props["Environment"]["Variables"]
    assert variables[CHECKPOINT_TABLE_ENV] == {"Ref": "CollectorCheckpointTable"}
    assert variables[MAX_SLICES_ENV] == DEFAULT_MAX_SLICES  # the CollectorMaxSlices default


def test_the_checkpoint_table_is_the_stores_schema_with_ttl_recovery_and_the_stacks_key() -> None:
    table = stack().properties("CollectorCheckpointTable")
    assert table["KeySchema"] == [{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "PipelineKey"}
    without = stack(EnableAudit="false", EnableInventory="false").resources
    assert "CollectorCheckpointTable" not in without
    assert "CollectorCheckpointTable" in stack(EnableAudit="false").resources


def test_each_function_handler_exists_and_has_a_build_target() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    for name, function in stack().of_type("AWS::Serverless::Function").items():
        module_name, _, attribute = function["Properties"]["Handler"].rpartition(".")
        module = importlib.import_module(module_name)
        assert callable(getattr(module, attribute)), name
        assert re.search(rf"^(build-\S+ )*build-{name}\b.*:", makefile, re.MULTILINE), name


# --- Response ----------------------------------------------------------------------------------


def test_mitigation_actions_cover_the_five_kinds_each_with_its_own_role() -> None:
    actions = stack().of_type("AWS::IoT::MitigationAction")
    kinds = {next(iter(a["Properties"]["ActionParams"])): a for a in actions.values()}
    assert set(kinds) == {
        "AddThingsToThingGroupParams",
        "UpdateDeviceCertificateParams",
        "EnableIoTLoggingParams",
        "ReplaceDefaultPolicyVersionParams",
        "PublishFindingToSnsParams",
    }
    quarantine = kinds["AddThingsToThingGroupParams"]["Properties"]["ActionParams"]
    assert quarantine["AddThingsToThingGroupParams"]["ThingGroupNames"] == [
        {"Ref": "QuarantineThingGroup"}
    ]
    roles = [a["Properties"]["RoleArn"]["Fn::GetAtt"][0] for a in actions.values()]
    assert len(set(roles)) == len(roles)


def test_quarantine_group_gets_a_deny_everything_policy() -> None:
    s = stack()
    policy = s.properties("QuarantinePolicy")["PolicyDocument"]
    assert policy["Statement"] == [{"Effect": "Deny", "Action": "iot:*", "Resource": "*"}]
    attachment = s.properties("QuarantinePolicyAttachment")
    assert attachment["PolicyName"] == {"Ref": "QuarantinePolicy"}
    assert attachment["ThingGroupArn"] == {"Fn::GetAtt": ["QuarantineThingGroup", "Arn"]}
    assert s.resources["QuarantinePolicyAttachment"]["Type"] == "Custom::ThingGroupPolicyAttachment"


# --- Alarms ------------------------------------------------------------------------------------


def test_alarms_cover_auth_errors_delivery_transform_and_backups() -> None:
    alarms = stack().of_type("AWS::CloudWatch::Alarm")
    metrics = {
        (a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms.values()
    }
    assert {
        ("AWS/IoT", "Connect.AuthError"),
        ("AWS/IoT", "PublishIn.AuthError"),
        ("AWS/IoT", "PublishOut.AuthError"),
        ("AWS/IoT", "Subscribe.AuthError"),
        ("AWS/Firehose", "DeliveryToSplunk.Success"),
        ("AWS/Firehose", "DeliveryToSplunk.DataFreshness"),
        ("AWS/Lambda", "Errors"),
        ("AWS/S3", "PutRequests"),
    } <= metrics
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "OperationsTopic"}], name
    auth = [a for a in alarms.values() if a["Properties"]["MetricName"].endswith(".AuthError")]
    assert len(auth) == 4
    tuned = stack(ConnectAuthErrorThreshold="50").properties("ConnectAuthErrorAlarm")
    assert tuned["Threshold"] == "50"


def test_backup_alarm_watches_the_metrics_filter_the_bucket_defines() -> None:
    s = stack()
    (config,) = s.properties("BackupBucket")["MetricsConfigurations"]
    alarm = s.properties("BackupObjectsAlarm")
    assert {"Name": "FilterId", "Value": config["Id"]} in alarm["Dimensions"]


def test_operations_email_is_optional() -> None:
    assert "OperationsEmailSubscription" not in stack().resources
    with_email = stack(OperationsEmail="soc@example.com")
    subscription = with_email.properties("OperationsEmailSubscription")
    assert subscription["Protocol"] == "email"


# --- IAM ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("switches", [{}, {"EnableDetect": "true"}], ids=["default", "detect"])
def test_no_allow_statement_grants_every_action(switches: dict[str, str]) -> None:
    for owner, statement in statements(stack(**switches)):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert action != "*", owner
            assert not action.endswith(":*"), (owner, action)
        assert "NotAction" not in statement, owner


@pytest.mark.parametrize("switches", [{}, {"EnableDetect": "true"}], ids=["default", "detect"])
def test_wildcard_resources_only_for_account_level_actions(switches: dict[str, str]) -> None:
    s = stack(**switches)
    for owner, statement in statements(s):
        if statement["Effect"] != "Allow" or "*" not in as_list(statement["Resource"]):
            continue
        if s.resources[owner]["Type"] == "AWS::KMS::Key":
            continue  # in a key policy, "*" means this key
        assert set(as_list(statement["Action"])) <= ACCOUNT_LEVEL_ACTIONS, owner


def test_transform_may_reput_into_its_own_stream_only() -> None:
    s = stack()
    (reput,) = [
        st
        for owner, st in statements(s)
        if owner == "TransformRole" and "firehose:PutRecordBatch" in as_list(st["Action"])
    ]
    stream_name = s.properties("DeliveryStream")["DeliveryStreamName"]["Fn::Sub"]
    assert reput["Resource"]["Fn::Sub"].endswith(f":deliverystream/{stream_name}")
    assert as_list(reput["Action"]) == ["firehose:PutRecordBatch"]


def test_service_roles_are_assumable_only_from_this_account_where_supported() -> None:
    for name, role in stack(EnableDetect="true").of_type("AWS::IAM::Role").items():
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        service = trust["Principal"]["Service"]
        if service == "lambda.amazonaws.com":
            continue  # Lambda execution roles: the function is in this stack
        assert "aws:SourceAccount" in json.dumps(trust.get("Condition", {})) or "aws:SourceArn" in (
            json.dumps(trust.get("Condition", {}))
        ), name


# --- Outputs and config ------------------------------------------------------------------------


def test_outputs_name_what_operators_need() -> None:
    outputs = stack(EnableDetect="true").outputs
    assert {
        "DeliveryStreamName",
        "DeliveryStreamArn",
        "BackupBucketName",
        "OperationsTopicArn",
        "DetectAlertTopicArn",
        "AuditTopicArn",
        "QuarantineThingGroupName",
        "TransformFunctionArn",
        "AuditFindingsFunctionArn",
        "InventoryFunctionArn",
    } <= set(outputs)
    assert "DetectAlertTopicArn" not in stack().outputs


def test_samconfig_builds_in_source_and_deploys_safely() -> None:
    config = tomllib.loads((REPO / "sam" / "samconfig.toml").read_text(encoding="utf-8"))
    assert config["default"]["build"]["parameters"]["build_in_source"] is True
    deploy = config["default"]["deploy"]["parameters"]
    assert deploy["confirm_changeset"] is True
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert "parameter_overrides" not in deploy  # endpoint and secret ARN come from --guided


def test_readme_tables_match_the_template_and_the_detections() -> None:
    """Regenerate with `python -m devtools.readme_tables` after a parameter or detection changes."""
    readme = README.read_text(encoding="utf-8")
    assert rendered_readme(readme) == readme


def test_every_parameter_is_in_a_console_group() -> None:
    groups = TEMPLATE["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    grouped = [name for group in groups for name in group["Parameters"]]
    assert sorted(grouped) == sorted(TEMPLATE["Parameters"])


# --- Responder -----------------------------------------------------------------------------------


def _responder_statements(role: str = "ResponderRole") -> dict[str, dict[str, Any]]:
    (policy,) = stack().properties(role)["Policies"]
    return {statement["Sid"]: statement for statement in policy["PolicyDocument"]["Statement"]}


def test_the_responder_may_change_only_the_quarantine_group_certificates_and_stack_actions() -> (
    None
):
    granted = _responder_statements()
    changing = {
        "iot:AddThingToThingGroup",
        "iot:RemoveThingFromThingGroup",
        "iot:UpdateCertificate",
        "iot:DeleteConnection",
        "iot:StartAuditMitigationActionsTask",
    }
    by_action = {
        action: statement
        for statement in granted.values()
        for action in as_list(statement["Action"])
        if action in changing
    }
    assert set(by_action) == changing
    membership = as_list(by_action["iot:AddThingToThingGroup"]["Resource"])
    assert {"Fn::GetAtt": ["QuarantineThingGroup", "Arn"]} in membership
    assert not any("thinggroup/*" in json.dumps(resource) for resource in membership)
    mitigations = json.dumps(by_action["iot:StartAuditMitigationActionsTask"]["Resource"])
    for action in (
        "EnableLoggingMitigation",
        "ReplacePolicyVersionMitigation",
        "DeactivateCertificateMitigation",
    ):
        assert f"${{{action}}}" in mitigations
    assert (
        "QuarantineThingMitigation" not in mitigations
    )  # quarantine goes through the responder itself


def test_the_responders_settings_are_what_it_reads_and_map_real_checks() -> None:
    variables = stack().properties("ResponderFunction")["Environment"]["Variables"]
    concrete = {
        name: "placeholder" if isinstance(value, dict) else str(value)
        for name, value in variables.items()
    }
    mapping_template, names = variables["MITIGATION_ACTIONS"]["Fn::Sub"]
    mapping = json.loads(
        re.sub(r"\$\{(\w+)\}", lambda m: f"stack-{m[1].lower()}", mapping_template)
    )
    assert set(names) == {"Logging", "Policy", "Certificate"}
    assert all(audit_check(check) is not None for check in mapping)
    concrete |= {
        "QUARANTINE_THING_GROUP": "iot-defender-splunk-quarantine",
        "PROTECTED_THING_GROUPS": "safety-critical",
        "FLEET_ACTION_CAP": "50",
        "MITIGATION_ACTIONS": json.dumps(mapping),
    }
    settings = load_responder_settings(concrete)
    assert settings.mitigation_actions == mapping
    assert settings.fleet_cap == 50


def test_the_responders_tables_keep_history_and_use_the_stacks_key() -> None:
    for table in ("ResponderStateTable", "ResponderIdempotencyTable"):
        properties = stack().properties(table)
        assert properties["PointInTimeRecoverySpecification"] == {
            "PointInTimeRecoveryEnabled": True
        }
        assert properties["SSESpecification"]["KMSMasterKeyId"] == {"Ref": "PipelineKey"}
    idempotency = stack().properties("ResponderIdempotencyTable")
    assert idempotency["TimeToLiveSpecification"] == {
        "AttributeName": "expiration",
        "Enabled": True,
    }


def test_a_soar_role_exists_only_for_a_named_principal_and_may_only_invoke_the_responder() -> None:
    assert "SoarInvokeRole" not in stack().resources
    principal = "arn:aws:iam::210987654321:role/soar-aws-lambda-asset"
    with_soar = stack(SoarPrincipalArn=principal)
    role = with_soar.properties("SoarInvokeRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"AWS": principal}
    (policy,) = role["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert (statement["Action"], statement["Resource"]) == (
        "lambda:InvokeFunction",
        {"Fn::GetAtt": ["ResponderFunction", "Arn"]},
    )


def test_responder_errors_and_throttles_alarm() -> None:
    alarms = {
        stack().properties(name)["MetricName"]
        for name in ("ResponderErrorsAlarm", "ResponderThrottlesAlarm")
    }
    assert alarms == {"Errors", "Throttles"}
