"""
Remediates AWS IoT Device Defender audit findings, routed by audit check: a shared device certificate is deactivated, and disabled logging and an overly permissive IoT policy get the stack&#39;s audit mitigation action. It asks the responder Lambda for a dry run of each remediation, asks an analyst to approve the plan, runs the approved remediations and records the answers in a note and a comment; findings of other checks are listed for an analyst.
"""


import phantom.rules as phantom
import json
from datetime import datetime, timedelta


@phantom.playbook_block()
def on_start(container):
    phantom.debug('on_start() called')

    # call 'select_audit_findings' block
    select_audit_findings(container=container)

    return


@phantom.playbook_block()
def select_audit_findings(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("select_audit_findings() called")

    ################################################################################
    # Keeps the artifacts of audit findings: those with an audit check name.
    ################################################################################

    # collect filtered artifact ids and results for 'if' condition 1
    matched_artifacts_1, matched_results_1 = phantom.condition(
        container=container,
        conditions=[
            ["artifact:*.cef.check_name", "!=", ""]
        ],
        name="select_audit_findings:condition_1",
        delimiter=None)

    # call connected blocks if filtered artifacts or results
    if matched_artifacts_1 or matched_results_1:
        playbook_settings(action=action, success=success, container=container, results=results, handle=handle, filtered_artifacts=matched_artifacts_1, filtered_results=matched_results_1)

    return


@phantom.playbook_block()
def playbook_settings(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("playbook_settings() called")

    ################################################################################
    # This block uses custom code: the settings of the playbook, the only values a
    # site changes.
    ################################################################################

    playbook_settings__function_name = None
    playbook_settings__certificate_checks = None
    playbook_settings__mitigation_checks = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # The settings of this playbook: the values a site changes. The AWS Lambda app asset is
    # chosen in the two invoke lambda blocks (asset aws_lambda); see the playbook notes.
    # The responder Lambda: its name or ARN (the stack output ResponderFunctionName).
    playbook_settings__function_name = "iot-defender-splunk-responder"
    # Checks whose findings name a device certificate to deactivate (deactivate_certificate).
    playbook_settings__certificate_checks = ["DEVICE_CERTIFICATE_SHARED_CHECK"]
    # Checks the stack has a mitigation action for: the responder starts an audit mitigation
    # actions task for the findings by their finding ids, or for a finding with no usable id for
    # every finding of its check in its audit task (remediate_audit_finding).
    playbook_settings__mitigation_checks = [
        "LOGGING_DISABLED_CHECK",
        "IOT_POLICY_OVERLY_PERMISSIVE_CHECK",
    ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="playbook_settings:function_name", value=json.dumps(playbook_settings__function_name))
    phantom.save_run_data(key="playbook_settings:certificate_checks", value=json.dumps(playbook_settings__certificate_checks))
    phantom.save_run_data(key="playbook_settings:mitigation_checks", value=json.dumps(playbook_settings__mitigation_checks))

    route_findings(container=container)

    return


@phantom.playbook_block()
def route_findings(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("route_findings() called")

    ################################################################################
    # This block uses custom code: routes each finding by its check to
    # deactivate_certificate, to remediate_audit_finding (by finding id, or by audit
    # task and check for a finding with no usable id) or to an analyst, and builds
    # one dry run per remediation.
    ################################################################################

    filtered_artifact_0_data_select_audit_findings = phantom.collect2(container=container, datapath=["filtered-data:select_audit_findings:condition_1:artifact:*.cef.check_name","filtered-data:select_audit_findings:condition_1:artifact:*.cef.resource_id","filtered-data:select_audit_findings:condition_1:artifact:*.cef.task_id","filtered-data:select_audit_findings:condition_1:artifact:*.cef"])
    playbook_settings__certificate_checks = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:certificate_checks")) != "" else "null")  # pylint: disable=used-before-assignment
    playbook_settings__mitigation_checks = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:mitigation_checks")) != "" else "null")  # pylint: disable=used-before-assignment

    filtered_artifact_0__cef_check_name = [item[0] for item in filtered_artifact_0_data_select_audit_findings]
    filtered_artifact_0__cef_resource_id = [item[1] for item in filtered_artifact_0_data_select_audit_findings]
    filtered_artifact_0__cef_task_id = [item[2] for item in filtered_artifact_0_data_select_audit_findings]
    filtered_artifact_0__cef = [item[3] for item in filtered_artifact_0_data_select_audit_findings]

    route_findings__remediations = None
    route_findings__manual = None
    route_findings__plan_requests = None
    route_findings__scope = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    import hashlib
    import re

    # Each playbook is imported into SOAR on its own and SOAR forbids global custom code, so the
    # small helpers below are repeated in the playbooks that need them.

    def values(field):
        # A CEF field holds one value, a list (multivalue field) or newline-separated values.
        items = field if isinstance(field, list) else [field]
        return [
            part.strip()
            for item in items
            if item is not None
            for part in str(item).splitlines()
            if part.strip() not in ("", "-")
        ]

    def cef_values(cef, name):
        # An evidence field, read from the artifact's whole CEF: the detections this playbook
        # serves send different fields, so one a finding does not send gives no values (and
        # finding_id is empty for a finding known only from an audit's SNS summary). Only
        # check_name, resource_id and task_id, which every one of them sends, are collected by
        # name.
        return values(cef.get(name) if isinstance(cef, dict) else None)

    # What the responder accepts (respond/requests.py): finding ids and audit task ids, and at
    # most this many finding ids in one request.
    finding_id_pattern = r"[a-zA-Z0-9_-]{1,128}"
    audit_task_id_pattern = r"[a-zA-Z0-9_-]{1,40}"
    max_findings = 25

    def request_id(step, target):
        # The responder's idempotency key: the same container, step and target give the same key,
        # so a re-run of this step replays the first answer instead of acting twice.
        digest = hashlib.sha256(target.encode("utf-8")).hexdigest()[:12]
        return f"soar-{container['id']}-{step}-{digest}"

    remediations = {}
    # (audit task, check) -> finding id -> the finding: remediated by finding id.
    by_finding = {}
    route_findings__manual = []
    rows = zip(
        filtered_artifact_0__cef_check_name,
        filtered_artifact_0__cef_resource_id,
        filtered_artifact_0__cef_task_id,
        filtered_artifact_0__cef,
    )
    for check_field, resource_id, task_id, cef in rows:
        check = " ".join(values(check_field))
        resources = values(resource_id)
        subject = " ".join(cef_values(cef, "resource_type") + resources) or "the account"
        reasons = cef_values(cef, "reason")
        finding = f"{check} on {subject}" + (f": {' '.join(reasons)}" if reasons else "")
        if check in playbook_settings__certificate_checks:
            certificates = [
                c
                for c in cef_values(cef, "certificate_ids") + resources
                if re.fullmatch(r"[0-9a-f]{64}", c)
            ]
            if not certificates:
                route_findings__manual.append(
                    {"finding": finding, "why": "it names no certificate id"}
                )
            for certificate in dict.fromkeys(certificates):
                entry = remediations.setdefault(
                    certificate,
                    {
                        "target": f"certificate {certificate}",
                        "action": "deactivate_certificate",
                        "params": {"certificate_id": certificate},
                        "findings": [],
                    },
                )
                entry["findings"].append(finding)
        elif check in playbook_settings__mitigation_checks:
            tasks = [t for t in values(task_id) if re.fullmatch(audit_task_id_pattern, t)]
            ids = [i for i in cef_values(cef, "finding_id") if re.fullmatch(finding_id_pattern, i)]
            if ids:
                # Only the findings named: those the analyst sees in the prompt.
                group = by_finding.setdefault((tasks[0] if tasks else "", check), {})
                for finding_id in ids:
                    group.setdefault(finding_id, f"{finding} (finding {finding_id})")
                continue
            if not tasks:
                route_findings__manual.append(
                    {"finding": finding, "why": "it names no usable finding id or audit task"}
                )
                continue
            # No usable finding id: the mitigation task covers every finding of the check in the
            # audit task, which the target says.
            entry = remediations.setdefault(
                f"{tasks[0]}:{check}",
                {
                    "target": f"every {check} finding in audit task {tasks[0]}",
                    "action": "remediate_audit_finding",
                    "params": {"audit_task_id": tasks[0], "check_name": check},
                    "findings": [],
                },
            )
            entry["findings"].append(finding)
        else:
            route_findings__manual.append(
                {"finding": finding, "why": "no automated remediation for this check"}
            )

    def add_finding_id_requests():
        # One request per check and audit task, of at most max_findings finding ids each; its key
        # (which no certificate id or audit task and check can be) is the finding ids.
        for (task, check), group in by_finding.items():
            fallback = remediations.get(f"{task}:{check}")
            if fallback is not None:
                # A mitigation of every finding of the check in the audit task already covers these.
                fallback["findings"].extend(group.values())
                continue
            ids = list(group)
            for start in range(0, len(ids), max_findings):
                chunk = ids[start : start + max_findings]
                remediations["finding_ids=" + ",".join(chunk)] = {
                    "target": f"{check} finding{'s' if len(chunk) > 1 else ''} {', '.join(chunk)}",
                    "action": "remediate_audit_finding",
                    "params": {"finding_ids": chunk},
                    "findings": [group[finding_id] for finding_id in chunk],
                }

    add_finding_id_requests()

    route_findings__remediations = []
    route_findings__plan_requests = []
    for key, entry in sorted(remediations.items()):
        entry["plan_request_id"] = request_id("audit-plan", key)
        entry["request_id"] = request_id("audit-remediate", key)
        reason = (
            f"{container.get('name')} (SOAR container {container['id']}): {entry['action']} for"
            f" {'; '.join(entry['findings'])}"
        )
        entry["reason"] = "".join(ch for ch in reason if ch.isprintable())[:2048]
        route_findings__remediations.append(entry)
        plan = {
            "action": entry["action"],
            "request_id": entry["plan_request_id"],
            "requested_by": "soar:iot_audit_remediation:plan",
            "reason": entry["reason"],
            "dry_run": True,
            **entry["params"],
        }
        route_findings__plan_requests.append(json.dumps(plan))
    route_findings__scope = "remediate" if route_findings__remediations else "manual"

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="route_findings:remediations", value=json.dumps(route_findings__remediations))
    phantom.save_run_data(key="route_findings:manual", value=json.dumps(route_findings__manual))
    phantom.save_run_data(key="route_findings:plan_requests", value=json.dumps(route_findings__plan_requests))
    phantom.save_run_data(key="route_findings:scope", value=json.dumps(route_findings__scope))

    remediation_found(container=container)

    return


@phantom.playbook_block()
def remediation_found(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("remediation_found() called")

    ################################################################################
    # Goes on when a finding has an automated remediation; findings left for an
    # analyst are only reported.
    ################################################################################

    # check for 'if' condition 1
    found_match_1 = phantom.decision(
        container=container,
        conditions=[
            ["route_findings:custom_function:scope", "==", "remediate"]
        ],
        delimiter=None)

    # call connected blocks if condition 1 matched
    if found_match_1:
        plan_remediation(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    join_summarize_outcome(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def plan_remediation(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("plan_remediation() called")

    # phantom.debug('Action: {0} {1}'.format(action['name'], ('SUCCEEDED' if success else 'FAILED')))

    ################################################################################
    # Asks the responder for a dry run of each remediation: it validates the
    # request, reads the current state and answers with what would change. This
    # block uses custom code: one invocation per remediation.
    ################################################################################

    playbook_settings__function_name = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:function_name")) != "" else "null")  # pylint: disable=used-before-assignment
    route_findings__plan_requests = json.loads(_ if (_ := phantom.get_run_data(key="route_findings:plan_requests")) != "" else "null")  # pylint: disable=used-before-assignment

    parameters = []

    if playbook_settings__function_name is not None:
        parameters.append({
            "payload": route_findings__plan_requests,
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
        })

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # One invocation per remediation: the responder takes one request per call.
    parameters = [
        {
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
            "payload": request,
        }
        for request in route_findings__plan_requests
    ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.act("invoke lambda", parameters=parameters, name="plan_remediation", assets=["aws_lambda"], callback=assess_plan)

    return


@phantom.playbook_block()
def assess_plan(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("assess_plan() called")

    ################################################################################
    # This block uses custom code: keeps the remediations the responder planned and
    # reports the ones it found done already, refused or failed.
    ################################################################################

    plan_remediation_result_data = phantom.collect2(container=container, datapath=["plan_remediation:action_result.parameter.payload","plan_remediation:action_result.status","plan_remediation:action_result.message","plan_remediation:action_result.data.*.Payload"], action_results=results)
    route_findings__remediations = json.loads(_ if (_ := phantom.get_run_data(key="route_findings:remediations")) != "" else "null")  # pylint: disable=used-before-assignment

    plan_remediation_parameter_payload = [item[0] for item in plan_remediation_result_data]
    plan_remediation_status = [item[1] for item in plan_remediation_result_data]
    plan_remediation_message = [item[2] for item in plan_remediation_result_data]
    plan_remediation_result_item_3 = [item[3] for item in plan_remediation_result_data]

    assess_plan__assessment = None
    assess_plan__route = None
    assess_plan__approval_summary = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    answers = {}
    rows = zip(
        plan_remediation_parameter_payload,
        plan_remediation_status,
        plan_remediation_message,
        plan_remediation_result_item_3,
    )
    for payload, status, message, answer in rows:
        answers[json.loads(payload)["request_id"]] = (status, message, answer)

    assess_plan__assessment = []
    for remediation in route_findings__remediations:
        status, message, answer = answers.get(
            remediation["plan_request_id"], ("failed", "no result", None)
        )
        answer = answer if isinstance(answer, dict) else {}
        kind = answer.get("status") if status == "success" else None
        entry = dict(remediation, planned=answer.get("message"), plan=kind)
        if kind == "planned":
            entry["decision"], entry["why"] = "ask", "planned"
        elif kind == "noop":
            entry["decision"], entry["why"] = "skip", f"nothing to do: {answer.get('message')}"
        elif kind in ("refused", "error"):
            entry["decision"], entry["why"] = (
                "skip",
                f"the dry run was {kind}: {answer.get('message')}",
            )
        else:
            detail = answer.get("message") or answer.get("errorMessage") or message
            entry["decision"], entry["why"] = "skip", f"the dry run failed: {detail}"
        assess_plan__assessment.append(entry)

    candidates = [entry for entry in assess_plan__assessment if entry["decision"] == "ask"]
    assess_plan__route = "ask" if candidates else "none"

    lines = [
        "| Action | Target | Findings | The responder plans |",
        "| --- | --- | --- | --- |",
    ] + [
        f"| {e['action']} | {e['target']} | {'; '.join(e['findings'])} | {e['planned']} |"
        for e in candidates
    ]
    assess_plan__approval_summary = "\n".join(lines)

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="assess_plan:assessment", value=json.dumps(assess_plan__assessment))
    phantom.save_run_data(key="assess_plan:route", value=json.dumps(assess_plan__route))
    phantom.save_run_data(key="assess_plan:approval_summary", value=json.dumps(assess_plan__approval_summary))

    approval_route(container=container)

    return


@phantom.playbook_block()
def approval_route(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("approval_route() called")

    ################################################################################
    # Asks the analyst when a remediation is planned, and only reports otherwise.
    ################################################################################

    # check for 'if' condition 1
    found_match_1 = phantom.decision(
        container=container,
        conditions=[
            ["assess_plan:custom_function:route", "==", "ask"]
        ],
        delimiter=None)

    # call connected blocks if condition 1 matched
    if found_match_1:
        format_approval_request(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    join_summarize_outcome(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def format_approval_request(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("format_approval_request() called")

    ################################################################################
    # Formats the approval request: the container and, per remediation, the findings
    # and the plan.
    ################################################################################

    template = """SOAR container {0} ({1}) reports audit findings with an automated remediation. The responder plans the changes below; deactivating a certificate cuts off every device that uses it. A mitigation by finding id covers only the findings it lists; one for every finding of a check in an audit task (for findings that name no usable finding id) covers all of that check's findings in the audit task, listed here or not.\n\n{2}"""

    # parameter list for template variable replacement
    parameters = [
        "container:id",
        "container:name",
        "assess_plan:custom_function:approval_summary"
    ]

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # Write your custom code here...

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.format(container=container, template=template, parameters=parameters, name="format_approval_request")

    approve_remediation(container=container)

    return


@phantom.playbook_block()
def approve_remediation(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("approve_remediation() called")

    ################################################################################
    # Asks the analyst to approve the remediations planned.
    ################################################################################

    # set user and message variables for phantom.prompt call

    user = None
    role = "Administrator"
    message = """{0}"""

    # parameter list for template variable replacement
    parameters = [
        "format_approval_request:formatted_data"
    ]

    # responses
    response_types = [
        {
            "prompt": "Run these remediations?",
            "options": {
                "type": "list",
                "choices": [
                    "Yes",
                    "No"
                ],
            },
        }
    ]

    phantom.prompt2(container=container, user=user, role=role, message=message, respond_in_mins=60, name="approve_remediation", parameters=parameters, response_types=response_types, callback=remediation_approved)

    return


@phantom.playbook_block()
def remediation_approved(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("remediation_approved() called")

    ################################################################################
    # Goes on only when the analyst answered Yes; a No or no answer is reported.
    ################################################################################

    # check for 'if' condition 1
    found_match_1 = phantom.decision(
        container=container,
        conditions=[
            ["approve_remediation:action_result.summary.responses.0", "==", "Yes"]
        ],
        delimiter=None)

    # call connected blocks if condition 1 matched
    if found_match_1:
        build_remediation_requests(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    join_summarize_outcome(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def build_remediation_requests(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("build_remediation_requests() called")

    ################################################################################
    # This block uses custom code: the approved remediations as requests that change
    # AWS IoT, naming the playbook and the approver, with the findings as the
    # reason.
    ################################################################################

    approve_remediation_result_data = phantom.collect2(container=container, datapath=["approve_remediation:action_result.data.*.user"], action_results=results)
    assess_plan__assessment = json.loads(_ if (_ := phantom.get_run_data(key="assess_plan:assessment")) != "" else "null")  # pylint: disable=used-before-assignment

    approve_remediation_result_item_0 = [item[0] for item in approve_remediation_result_data]

    build_remediation_requests__requests = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    def printable(text, limit):
        return "".join(ch for ch in str(text) if ch.isprintable())[:limit]

    approver = next((user for user in approve_remediation_result_item_0 if user), "unknown")
    requested_by = printable(f"soar:iot_audit_remediation:approved-by:{approver}", 256)

    build_remediation_requests__requests = []
    for entry in assess_plan__assessment:
        if entry["decision"] != "ask":
            continue
        request = {
            "action": entry["action"],
            "request_id": entry["request_id"],
            "requested_by": requested_by,
            "reason": entry["reason"],
            **entry["params"],
        }
        build_remediation_requests__requests.append(json.dumps(request))

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="build_remediation_requests:requests", value=json.dumps(build_remediation_requests__requests))

    remediate_findings(container=container)

    return


@phantom.playbook_block()
def remediate_findings(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("remediate_findings() called")

    # phantom.debug('Action: {0} {1}'.format(action['name'], ('SUCCEEDED' if success else 'FAILED')))

    ################################################################################
    # Runs the approved remediations with the responder's deactivate_certificate and
    # remediate_audit_finding. This block uses custom code: one invocation per
    # remediation.
    ################################################################################

    playbook_settings__function_name = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:function_name")) != "" else "null")  # pylint: disable=used-before-assignment
    build_remediation_requests__requests = json.loads(_ if (_ := phantom.get_run_data(key="build_remediation_requests:requests")) != "" else "null")  # pylint: disable=used-before-assignment

    parameters = []

    if playbook_settings__function_name is not None:
        parameters.append({
            "payload": build_remediation_requests__requests,
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
        })

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # One invocation per remediation: the responder takes one request per call.
    parameters = [
        {
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
            "payload": request,
        }
        for request in build_remediation_requests__requests
    ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.act("invoke lambda", parameters=parameters, name="remediate_findings", assets=["aws_lambda"], callback=join_summarize_outcome)

    return


@phantom.playbook_block()
def join_summarize_outcome(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("join_summarize_outcome() called")

    # if the joined function has already been called, do nothing
    if phantom.get_run_data(key="join_summarize_outcome_called"):
        return

    # save the state that the joined function has now been called
    phantom.save_run_data(key="join_summarize_outcome_called", value="summarize_outcome")

    # call connected block "summarize_outcome"
    summarize_outcome(container=container, handle=handle)

    return


@phantom.playbook_block()
def summarize_outcome(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("summarize_outcome() called")

    ################################################################################
    # This block uses custom code: writes the note (per remediation the findings,
    # the plan and the responder answer with the state before and after, then the
    # findings left for an analyst) and a one-line comment. Refused and failed
    # answers are reported as such.
    ################################################################################

    approve_remediation_result_data = phantom.collect2(container=container, datapath=["approve_remediation:action_result.summary.responses.0","approve_remediation:action_result.data.*.user"], action_results=results)
    remediate_findings_result_data = phantom.collect2(container=container, datapath=["remediate_findings:action_result.parameter.payload","remediate_findings:action_result.status","remediate_findings:action_result.message","remediate_findings:action_result.data.*.Payload"], action_results=results)
    assess_plan__assessment = json.loads(_ if (_ := phantom.get_run_data(key="assess_plan:assessment")) != "" else "null")  # pylint: disable=used-before-assignment
    assess_plan__route = json.loads(_ if (_ := phantom.get_run_data(key="assess_plan:route")) != "" else "null")  # pylint: disable=used-before-assignment
    route_findings__manual = json.loads(_ if (_ := phantom.get_run_data(key="route_findings:manual")) != "" else "null")  # pylint: disable=used-before-assignment

    approve_remediation_summary_responses_0 = [item[0] for item in approve_remediation_result_data]
    approve_remediation_result_item_1 = [item[1] for item in approve_remediation_result_data]
    remediate_findings_parameter_payload = [item[0] for item in remediate_findings_result_data]
    remediate_findings_status = [item[1] for item in remediate_findings_result_data]
    remediate_findings_message = [item[2] for item in remediate_findings_result_data]
    remediate_findings_result_item_3 = [item[3] for item in remediate_findings_result_data]

    summarize_outcome__note = None
    summarize_outcome__comment = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    def show(state):
        # A target's state as the responder reports it: its plain fields.
        return ", ".join(
            f"{key} {value}"
            for key, value in sorted(state.items())
            if isinstance(value, (str, int, float))
        )

    # What each remediation is called once done, when there was nothing to do, and otherwise: a
    # mitigation task is started, and runs on in AWS IoT.
    headlines = {
        "deactivate_certificate": ("deactivated", "already inactive", "not deactivated"),
        "remediate_audit_finding": ("mitigation started", "nothing to mitigate", "not mitigated"),
    }

    def outcome(action, status, message, answer):
        # (headline, detail, target, response id) of one remediation, from the responder's answer.
        done, noop, failed = headlines[action]
        if status != "success" or not isinstance(answer, dict):
            detail = answer.get("errorMessage") if isinstance(answer, dict) else None
            return failed, f"the invoke lambda action failed: {detail or message}", None, None
        target = (answer.get("targets") or [{}])[0]
        text = f"{answer.get('status')}: {answer.get('message')}"
        if answer.get("status") == "error" and answer.get("error"):
            text += f" [{answer['error'].get('code')}]"
        after = target.get("after") if isinstance(target.get("after"), dict) else {}
        if after.get("task_id") and after["task_id"] not in text:
            text += f" (mitigation task {after['task_id']})"
        headline = {"ok": done, "noop": noop}.get(answer.get("status"), failed)
        return headline, text, target, answer.get("response_id")

    responses = [r for r in approve_remediation_summary_responses_0 if r]
    approver = next((user for user in approve_remediation_result_item_1 if user), "unknown")
    if assess_plan__route != "ask":
        approval = "not asked: nothing to remediate"
    elif responses and responses[0] == "Yes":
        approval = f"approved by {approver}"
    elif responses:
        approval = f"declined by {approver}"
    else:
        approval = "no answer before the prompt expired"

    outcomes = {}
    rows = zip(
        remediate_findings_parameter_payload,
        remediate_findings_status,
        remediate_findings_message,
        remediate_findings_result_item_3,
    )
    for payload, status, message, answer in rows:
        request = json.loads(payload)
        outcomes[request["request_id"]] = outcome(request["action"], status, message, answer)

    heading = f"SOAR container {container['id']}: {container.get('name')}"
    lines = [f"IoT Audit Remediation for {heading}.", "", f"Approval: {approval}."]
    phrases = []
    for entry in assess_plan__assessment or []:
        failed = headlines[entry["action"]][2]
        details = [f"- Findings: {'; '.join(entry['findings'])}"]
        if entry["request_id"] in outcomes:
            headline, text, target, response = outcomes[entry["request_id"]]
            ids = f"request {entry['request_id']}" + (f", response {response}" if response else "")
            details.append(f"- Responder: {text} ({ids})")
            details += [
                f"- {when.capitalize()}: {show(target[when])}"
                for when in ("before", "after")
                if target and target.get(when)
            ]
            detail = text if headline == failed else ""
        else:
            done_before = entry["plan"] == "noop"
            headline = headlines[entry["action"]][1] if done_before else failed
            detail = entry["why"] if entry["decision"] == "skip" else ""
            details.append(f"- Not done: {detail or approval}")
            if entry["decision"] != "skip":
                details.append(f"- Planned: {entry['planned']}")
        lines += ["", f"#### {entry['target']}: {headline}", *details]
        phrases.append(f"{entry['target']} {headline}" + (f" ({detail})" if detail else ""))
    if route_findings__manual:
        lines += ["", "#### Left for an analyst"]
        lines += [f"- {item['finding']}: {item['why']}" for item in route_findings__manual]
        phrases.append(f"{len(route_findings__manual)} finding(s) left for an analyst")

    summarize_outcome__note = "\n".join(lines)
    summarize_outcome__comment = f"IoT Audit Remediation ({approval}): " + "; ".join(phrases) + "."

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="summarize_outcome:note", value=json.dumps(summarize_outcome__note))
    phantom.save_run_data(key="summarize_outcome:comment", value=json.dumps(summarize_outcome__comment))

    add_outcome_note(container=container)

    return


@phantom.playbook_block()
def add_outcome_note(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("add_outcome_note() called")

    ################################################################################
    # Adds the outcome note to the container.
    ################################################################################

    summarize_outcome__note = json.loads(_ if (_ := phantom.get_run_data(key="summarize_outcome:note")) != "" else "null")  # pylint: disable=used-before-assignment

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # Write your custom code here...

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.add_note(container=container, content=summarize_outcome__note, note_format="markdown", note_type="general", title="IoT Audit Remediation")

    notify_analyst(container=container)

    return


@phantom.playbook_block()
def notify_analyst(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("notify_analyst() called")

    ################################################################################
    # Comments the outcome in one line, for the container's activity and its
    # watchers.
    ################################################################################

    summarize_outcome__comment = json.loads(_ if (_ := phantom.get_run_data(key="summarize_outcome:comment")) != "" else "null")  # pylint: disable=used-before-assignment

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # Write your custom code here...

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.comment(container=container, comment=summarize_outcome__comment)

    return


@phantom.playbook_block()
def on_finish(container, summary):
    phantom.debug("on_finish() called")

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # Write your custom code here...

    ################################################################################
    ## Custom Code End
    ################################################################################

    return
