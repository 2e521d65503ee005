"""
Releases devices from quarantine after an investigation. For each device named in the container it reads the device from AWS IoT through the responder Lambda, keeps the devices the responder quarantined, asks an analyst to approve the release and to give the reason, releases the approved devices (the responder undoes exactly what its quarantine changed) and records the state before and after in a note and a comment.
"""


import phantom.rules as phantom
import json
from datetime import datetime, timedelta


@phantom.playbook_block()
def on_start(container):
    phantom.debug('on_start() called')

    # call 'select_devices' block
    select_devices(container=container)

    return


@phantom.playbook_block()
def select_devices(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("select_devices() called")

    ################################################################################
    # Keeps the artifacts that name a device: those with a thing field.
    ################################################################################

    # collect filtered artifact ids and results for 'if' condition 1
    matched_artifacts_1, matched_results_1 = phantom.condition(
        container=container,
        conditions=[
            ["artifact:*.cef.thing", "!=", ""]
        ],
        name="select_devices:condition_1",
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
    playbook_settings__max_devices = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # The settings of this playbook: the values a site changes. The AWS Lambda app asset is
    # chosen in the two invoke lambda blocks (asset aws_lambda); see the playbook notes.
    # The responder Lambda: its name or ARN (the stack output ResponderFunctionName).
    playbook_settings__function_name = "iot-defender-splunk-responder"
    # More devices than this in one container is a fleet: the playbook releases none of them.
    playbook_settings__max_devices = 10

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="playbook_settings:function_name", value=json.dumps(playbook_settings__function_name))
    phantom.save_run_data(key="playbook_settings:max_devices", value=json.dumps(playbook_settings__max_devices))

    collect_devices(container=container)

    return


@phantom.playbook_block()
def collect_devices(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("collect_devices() called")

    ################################################################################
    # This block uses custom code: collects the devices named in the container,
    # checks the thing names and builds one describe_thing request per device,
    # unless there are too many.
    ################################################################################

    filtered_artifact_0_data_select_devices = phantom.collect2(container=container, datapath=["filtered-data:select_devices:condition_1:artifact:*.cef.thing"])
    playbook_settings__max_devices = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:max_devices")) != "" else "null")  # pylint: disable=used-before-assignment

    filtered_artifact_0__cef_thing = [item[0] for item in filtered_artifact_0_data_select_devices]

    collect_devices__devices = None
    collect_devices__describe_requests = None
    collect_devices__scope = None
    collect_devices__scope_comment = None
    collect_devices__ignored = None

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

    def request_id(step, target):
        # The responder's idempotency key: the same container, step and target give the same key,
        # so a re-run of this step replays the first answer instead of acting twice.
        digest = hashlib.sha256(target.encode("utf-8")).hexdigest()[:12]
        return f"soar-{container['id']}-{step}-{digest}"

    things = set()
    collect_devices__ignored = []
    for thing in (t for field in filtered_artifact_0__cef_thing for t in values(field)):
        if re.fullmatch(r"[a-zA-Z0-9:_-]{1,128}", thing):
            things.add(thing)
        else:
            collect_devices__ignored.append(thing)

    collect_devices__devices = [
        {
            "thing": thing,
            "describe_request_id": request_id("release-describe", thing),
            "release_request_id": request_id("release", thing),
        }
        for thing in sorted(things)
    ]

    collect_devices__describe_requests = []
    if not collect_devices__devices:
        collect_devices__scope = "none"
        collect_devices__scope_comment = (
            "IoT Device Release: no artifact names a valid thing"
            f" (ignored: {', '.join(collect_devices__ignored) or 'none'}); nothing was done."
        )
    elif len(collect_devices__devices) > playbook_settings__max_devices:
        collect_devices__scope = "fleet"
        collect_devices__scope_comment = (
            f"IoT Device Release: {len(collect_devices__devices)} devices in one container,"
            f" more than the {playbook_settings__max_devices} this playbook releases; nothing"
            " was done."
            " Release a fleet with the responder's release_group or release_version."
        )
    else:
        collect_devices__scope = "devices"
        collect_devices__scope_comment = ""
        collect_devices__describe_requests = [
            json.dumps(
                {
                    "action": "describe_thing",
                    "request_id": device["describe_request_id"],
                    "thing_name": device["thing"],
                }
            )
            for device in collect_devices__devices
        ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="collect_devices:devices", value=json.dumps(collect_devices__devices))
    phantom.save_run_data(key="collect_devices:describe_requests", value=json.dumps(collect_devices__describe_requests))
    phantom.save_run_data(key="collect_devices:scope", value=json.dumps(collect_devices__scope))
    phantom.save_run_data(key="collect_devices:scope_comment", value=json.dumps(collect_devices__scope_comment))
    phantom.save_run_data(key="collect_devices:ignored", value=json.dumps(collect_devices__ignored))

    device_scope(container=container)

    return


@phantom.playbook_block()
def device_scope(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("device_scope() called")

    ################################################################################
    # Goes on when the container names between one device and the largest number the
    # settings allow.
    ################################################################################

    # check for 'if' condition 1
    found_match_1 = phantom.decision(
        container=container,
        conditions=[
            ["collect_devices:custom_function:scope", "==", "devices"]
        ],
        delimiter=None)

    # call connected blocks if condition 1 matched
    if found_match_1:
        describe_devices(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    report_scope(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def describe_devices(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("describe_devices() called")

    # phantom.debug('Action: {0} {1}'.format(action['name'], ('SUCCEEDED' if success else 'FAILED')))

    ################################################################################
    # Reads each device (groups, quarantine record, certificates) with the
    # responder's describe_thing. This block uses custom code: one invocation per
    # device.
    ################################################################################

    playbook_settings__function_name = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:function_name")) != "" else "null")  # pylint: disable=used-before-assignment
    collect_devices__describe_requests = json.loads(_ if (_ := phantom.get_run_data(key="collect_devices:describe_requests")) != "" else "null")  # pylint: disable=used-before-assignment

    parameters = []

    if playbook_settings__function_name is not None:
        parameters.append({
            "payload": collect_devices__describe_requests,
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
        })

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # One invocation per device: the responder takes one request per call.
    parameters = [
        {
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
            "payload": request,
        }
        for request in collect_devices__describe_requests
    ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.act("invoke lambda", parameters=parameters, name="describe_devices", assets=["aws_lambda"], callback=assess_devices)

    return


@phantom.playbook_block()
def assess_devices(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("assess_devices() called")

    ################################################################################
    # This block uses custom code: keeps the devices the responder quarantined and
    # reports the others (not quarantined, quarantined by something else,
    # unreadable).
    ################################################################################

    describe_devices_result_data = phantom.collect2(container=container, datapath=["describe_devices:action_result.parameter.payload","describe_devices:action_result.status","describe_devices:action_result.message","describe_devices:action_result.data.*.Payload"], action_results=results)
    collect_devices__devices = json.loads(_ if (_ := phantom.get_run_data(key="collect_devices:devices")) != "" else "null")  # pylint: disable=used-before-assignment

    describe_devices_parameter_payload = [item[0] for item in describe_devices_result_data]
    describe_devices_status = [item[1] for item in describe_devices_result_data]
    describe_devices_message = [item[2] for item in describe_devices_result_data]
    describe_devices_result_item_3 = [item[3] for item in describe_devices_result_data]

    assess_devices__assessment = None
    assess_devices__route = None
    assess_devices__approval_summary = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    def record(quarantine):
        # The responder's quarantine record (when, by whom, why): its plain fields.
        return "; ".join(
            f"{key}: {value}"
            for key, value in sorted(quarantine.items())
            if isinstance(value, (str, int, float))
        )

    answers = {}
    rows = zip(
        describe_devices_parameter_payload,
        describe_devices_status,
        describe_devices_message,
        describe_devices_result_item_3,
    )
    for payload, status, message, answer in rows:
        answers[json.loads(payload)["thing_name"]] = (status, message, answer)

    assess_devices__assessment = []
    for device in collect_devices__devices:
        status, message, answer = answers.get(device["thing"], ("failed", "no result", None))
        answer = answer if isinstance(answer, dict) else {}
        targets = answer.get("targets") or [{}]
        state = (
            targets[0].get("before")
            if status == "success" and answer.get("status") == "ok"
            else None
        )
        entry = dict(device, state=state)
        if not state:
            detail = answer.get("message") or answer.get("errorMessage") or message
            entry["decision"], entry["why"] = "skip", f"not read from AWS IoT: {detail}"
        elif not state.get("quarantined"):
            entry["decision"], entry["why"] = "skip", "not quarantined"
        elif not state.get("quarantine"):
            entry["decision"] = "skip"
            entry["why"] = (
                "quarantined by something other than the responder (no quarantine record, e.g."
                " a Device Defender mitigation action): the responder does not release it;"
                " remove it from the quarantine group by hand"
            )
        else:
            entry["decision"], entry["why"] = "ask", record(state["quarantine"])
        assess_devices__assessment.append(entry)

    candidates = [entry for entry in assess_devices__assessment if entry["decision"] == "ask"]
    assess_devices__route = "ask" if candidates else "none"

    lines = ["| Device | Quarantine | Groups | Certificates |", "| --- | --- | --- | --- |"]
    for entry in candidates:
        state = entry["state"]
        certificates = ", ".join(
            f"{c['certificate_id'][:12]} {c['status']}" for c in state.get("certificates") or []
        )
        lines.append(
            f"| {entry['thing']} | {entry['why']} | {', '.join(state.get('groups') or [])}"
            f" | {certificates or 'none'} |"
        )
    assess_devices__approval_summary = "\n".join(lines)

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="assess_devices:assessment", value=json.dumps(assess_devices__assessment))
    phantom.save_run_data(key="assess_devices:route", value=json.dumps(assess_devices__route))
    phantom.save_run_data(key="assess_devices:approval_summary", value=json.dumps(assess_devices__approval_summary))

    release_route(container=container)

    return


@phantom.playbook_block()
def release_route(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("release_route() called")

    ################################################################################
    # Asks the analyst when a device can be released, and only reports otherwise.
    ################################################################################

    # check for 'if' condition 1
    found_match_1 = phantom.decision(
        container=container,
        conditions=[
            ["assess_devices:custom_function:route", "==", "ask"]
        ],
        delimiter=None)

    # call connected blocks if condition 1 matched
    if found_match_1:
        format_release_request(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    join_summarize_outcome(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def format_release_request(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("format_release_request() called")

    ################################################################################
    # Formats the release request: the container and, per device, its quarantine and
    # current state.
    ################################################################################

    template = """Release these devices from quarantine (SOAR container {0}, {1})? The responder undoes what its quarantine changed: it removes each device from the quarantine thing group and reactivates only the certificates the quarantine deactivated.\n\n{2}"""

    # parameter list for template variable replacement
    parameters = [
        "container:id",
        "container:name",
        "assess_devices:custom_function:approval_summary"
    ]

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # Write your custom code here...

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.format(container=container, template=template, parameters=parameters, name="format_release_request")

    approve_release(container=container)

    return


@phantom.playbook_block()
def approve_release(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("approve_release() called")

    ################################################################################
    # Asks the analyst to approve the release and to give its reason, which goes
    # into the audit trail.
    ################################################################################

    # set user and message variables for phantom.prompt call

    user = None
    role = "Administrator"
    message = """{0}"""

    # parameter list for template variable replacement
    parameters = [
        "format_release_request:formatted_data"
    ]

    # responses
    response_types = [
        {
            "prompt": "Release these devices?",
            "options": {
                "type": "list",
                "choices": [
                    "Yes",
                    "No"
                ],
            },
        },
        {
            "prompt": "Reason for the release (what the investigation found)",
            "options": {
                "type": "message",
            },
        }
    ]

    phantom.prompt2(container=container, user=user, role=role, message=message, respond_in_mins=60, name="approve_release", parameters=parameters, response_types=response_types, callback=release_approved)

    return


@phantom.playbook_block()
def release_approved(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("release_approved() called")

    ################################################################################
    # Goes on only when the analyst answered Yes and gave a reason; anything else is
    # reported.
    ################################################################################

    # check for 'if' condition 1
    found_match_1 = phantom.decision(
        container=container,
        logical_operator="and",
        conditions=[
            ["approve_release:action_result.summary.responses.0", "==", "Yes"],
            ["approve_release:action_result.summary.responses.1", "!=", ""]
        ],
        delimiter=None)

    # call connected blocks if condition 1 matched
    if found_match_1:
        build_release_requests(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    join_summarize_outcome(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def build_release_requests(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("build_release_requests() called")

    ################################################################################
    # This block uses custom code: one release_thing request per approved device,
    # naming the playbook and the approver, with the analyst's reason.
    ################################################################################

    approve_release_result_data = phantom.collect2(container=container, datapath=["approve_release:action_result.data.*.user","approve_release:action_result.summary.responses.1"], action_results=results)
    assess_devices__assessment = json.loads(_ if (_ := phantom.get_run_data(key="assess_devices:assessment")) != "" else "null")  # pylint: disable=used-before-assignment

    approve_release_result_item_0 = [item[0] for item in approve_release_result_data]
    approve_release_summary_responses_1 = [item[1] for item in approve_release_result_data]

    build_release_requests__requests = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    def printable(text, limit):
        return "".join(ch for ch in str(text) if ch.isprintable())[:limit]

    approver = next((user for user in approve_release_result_item_0 if user), "unknown")
    given = next((r for r in approve_release_summary_responses_1 if r), "")
    requested_by = printable(f"soar:iot_device_release:approved-by:{approver}", 256)
    reason = printable(
        f"{given} (released from SOAR container {container['id']} by {approver})", 2048
    )

    build_release_requests__requests = [
        json.dumps(
            {
                "action": "release_thing",
                "request_id": entry["release_request_id"],
                "requested_by": requested_by,
                "reason": reason,
                "thing_name": entry["thing"],
            }
        )
        for entry in assess_devices__assessment
        if entry["decision"] == "ask"
    ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="build_release_requests:requests", value=json.dumps(build_release_requests__requests))

    release_devices(container=container)

    return


@phantom.playbook_block()
def release_devices(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("release_devices() called")

    # phantom.debug('Action: {0} {1}'.format(action['name'], ('SUCCEEDED' if success else 'FAILED')))

    ################################################################################
    # Releases the approved devices with the responder's release_thing. This block
    # uses custom code: one invocation per device.
    ################################################################################

    playbook_settings__function_name = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:function_name")) != "" else "null")  # pylint: disable=used-before-assignment
    build_release_requests__requests = json.loads(_ if (_ := phantom.get_run_data(key="build_release_requests:requests")) != "" else "null")  # pylint: disable=used-before-assignment

    parameters = []

    if playbook_settings__function_name is not None:
        parameters.append({
            "payload": build_release_requests__requests,
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
        })

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # One invocation per device: the responder takes one request per call.
    parameters = [
        {
            "function_name": playbook_settings__function_name,
            "invocation_type": "RequestResponse",
            "payload": request,
        }
        for request in build_release_requests__requests
    ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.act("invoke lambda", parameters=parameters, name="release_devices", assets=["aws_lambda"], callback=join_summarize_outcome)

    return


@phantom.playbook_block()
def join_summarize_outcome(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("join_summarize_outcome() called")

    # if the joined function has already been called, do nothing
    if phantom.get_run_data(key="join_summarize_outcome_called"):
        return

    if phantom.completed(action_names=["describe_devices"]):
        # save the state that the joined function has now been called
        phantom.save_run_data(key="join_summarize_outcome_called", value="summarize_outcome")

        # call connected block "summarize_outcome"
        summarize_outcome(container=container, handle=handle)

    return


@phantom.playbook_block()
def summarize_outcome(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("summarize_outcome() called")

    ################################################################################
    # This block uses custom code: writes the note (per device the quarantine, the
    # decision and the responder answer with the state before and after) and a one-
    # line comment. Refused and failed answers are reported as such, never as a
    # release.
    ################################################################################

    approve_release_result_data = phantom.collect2(container=container, datapath=["approve_release:action_result.summary.responses.0","approve_release:action_result.summary.responses.1","approve_release:action_result.data.*.user"], action_results=results)
    release_devices_result_data = phantom.collect2(container=container, datapath=["release_devices:action_result.parameter.payload","release_devices:action_result.status","release_devices:action_result.message","release_devices:action_result.data.*.Payload"], action_results=results)
    assess_devices__assessment = json.loads(_ if (_ := phantom.get_run_data(key="assess_devices:assessment")) != "" else "null")  # pylint: disable=used-before-assignment
    assess_devices__route = json.loads(_ if (_ := phantom.get_run_data(key="assess_devices:route")) != "" else "null")  # pylint: disable=used-before-assignment
    collect_devices__ignored = json.loads(_ if (_ := phantom.get_run_data(key="collect_devices:ignored")) != "" else "null")  # pylint: disable=used-before-assignment

    approve_release_summary_responses_0 = [item[0] for item in approve_release_result_data]
    approve_release_summary_responses_1 = [item[1] for item in approve_release_result_data]
    approve_release_result_item_2 = [item[2] for item in approve_release_result_data]
    release_devices_parameter_payload = [item[0] for item in release_devices_result_data]
    release_devices_status = [item[1] for item in release_devices_result_data]
    release_devices_message = [item[2] for item in release_devices_result_data]
    release_devices_result_item_3 = [item[3] for item in release_devices_result_data]

    summarize_outcome__note = None
    summarize_outcome__comment = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    def show(state):
        # A device's state as the responder reports it (docs/response.md, section 3).
        certificates = ", ".join(
            f"{c['certificate_id'][:12]} {c['status']}" for c in state.get("certificates") or []
        )
        parts = [
            f"groups {', '.join(state.get('groups') or []) or 'none'}",
            "quarantined" if state.get("quarantined") else "not quarantined",
            f"certificates {certificates or 'none'}",
        ]
        return "; ".join(parts)

    def outcome(status, message, answer):
        # (headline, detail, target) of one release_thing invocation; success only when the
        # responder says so and its after state shows the device out of quarantine.
        if status != "success" or not isinstance(answer, dict):
            detail = answer.get("errorMessage") if isinstance(answer, dict) else None
            return (
                "not released",
                f"the invoke lambda action failed: {detail or message}",
                None,
                None,
            )
        target = (answer.get("targets") or [{}])[0]
        kind = target.get("status", answer.get("status"))
        text = f"{answer.get('status')}: {answer.get('message')}"
        if answer.get("status") == "error" and answer.get("error"):
            text += f" [{answer['error'].get('code')}]"
        if kind in ("ok", "noop"):
            if (target.get("after") or {}).get("quarantined") is False:
                return (
                    ("released" if kind == "ok" else "already released"),
                    text,
                    target,
                    answer.get("response_id"),
                )
            text += " (but its after state is not released)"
        return "not released", text, target, answer.get("response_id")

    responses = approve_release_summary_responses_0
    approver = next((user for user in approve_release_result_item_2 if user), "unknown")
    given = next((r for r in approve_release_summary_responses_1 if r), "")
    if assess_devices__route != "ask":
        approval = "not asked: no device to release"
    elif responses and responses[0] == "Yes" and given:
        approval = f"approved by {approver}: {given}"
    elif responses and responses[0] == "Yes":
        approval = f"not released: {approver} gave no reason"
    elif responses and responses[0]:
        approval = f"declined by {approver}"
    else:
        approval = "no answer before the prompt expired"

    outcomes = {}
    rows = zip(
        release_devices_parameter_payload,
        release_devices_status,
        release_devices_message,
        release_devices_result_item_3,
    )
    for payload, status, message, answer in rows:
        outcomes[json.loads(payload)["thing_name"]] = outcome(status, message, answer)

    heading = f"SOAR container {container['id']}: {container.get('name')}"
    lines = [f"IoT Device Release for {heading}.", "", f"Approval: {approval}."]
    if collect_devices__ignored:
        lines += ["", f"Ignored, not thing names: {', '.join(collect_devices__ignored)}."]
    phrases = []
    for entry in assess_devices__assessment:
        thing = entry["thing"]
        details = []
        if entry["decision"] == "ask":
            details.append(f"- Quarantine: {entry['why']}")
        if thing in outcomes:
            headline, text, target, response = outcomes[thing]
            ids = f"request {entry['release_request_id']}" + (
                f", response {response}" if response else ""
            )
            details.append(f"- Responder: {text} ({ids})")
            details += [
                f"- {when.capitalize()}: {show(target[when])}"
                for when in ("before", "after")
                if target and target.get(when)
            ]
            detail = text if headline == "not released" else ""
        else:
            headline = "not released"
            detail = entry["why"] if entry["decision"] == "skip" else ""
            details.append(f"- Not released: {detail or approval}")
            if entry["state"]:
                details.append(f"- State: {show(entry['state'])}")
        lines += ["", f"#### {thing}: {headline}", *details]
        phrases.append(f"{thing} {headline}" + (f" ({detail})" if detail else ""))

    summarize_outcome__note = "\n".join(lines)
    summarize_outcome__comment = f"IoT Device Release ({approval}): " + "; ".join(phrases) + "."

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

    phantom.add_note(container=container, content=summarize_outcome__note, note_format="markdown", note_type="general", title="IoT Device Release")

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
def report_scope(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("report_scope() called")

    ################################################################################
    # Comments why nothing was done: no valid thing name, or more devices than the
    # settings allow.
    ################################################################################

    collect_devices__scope_comment = json.loads(_ if (_ := phantom.get_run_data(key="collect_devices:scope_comment")) != "" else "null")  # pylint: disable=used-before-assignment

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # Write your custom code here...

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.comment(container=container, comment=collect_devices__scope_comment)

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
