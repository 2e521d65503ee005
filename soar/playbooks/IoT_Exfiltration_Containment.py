"""
Contains a device that sends unusual volumes of data or talks to destinations outside its allowed networks. For each device named by the outbound-volume and destination alerts it gathers the volumes, baselines and destinations, reads the device from AWS IoT through the responder Lambda, skips devices in a protected thing group or already quarantined, asks an analyst to approve the quarantine, quarantines the approved devices and records the state before and after in a note and a comment.
"""


import phantom.rules as phantom
import json
from datetime import datetime, timedelta


@phantom.playbook_block()
def on_start(container):
    phantom.debug('on_start() called')

    # call 'select_exfil_alerts' block
    select_exfil_alerts(container=container)

    return


@phantom.playbook_block()
def select_exfil_alerts(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("select_exfil_alerts() called")

    ################################################################################
    # Keeps the artifacts of volume and destination alerts: those with a spiking or
    # rising metric or a destination address.
    ################################################################################

    # collect filtered artifact ids and results for 'if' condition 1
    matched_artifacts_1, matched_results_1 = phantom.condition(
        container=container,
        logical_operator="or",
        conditions=[
            ["artifact:*.cef.spiking_metrics", "!=", ""],
            ["artifact:*.cef.rising_metrics", "!=", ""],
            ["artifact:*.cef.dest_ip", "!=", ""]
        ],
        name="select_exfil_alerts:condition_1",
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
    playbook_settings__keep_certificate = None
    playbook_settings__disconnect = None
    playbook_settings__max_devices = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    # The settings of this playbook: the values a site changes. The AWS Lambda app asset is
    # chosen in the two invoke lambda blocks (asset aws_lambda); see the playbook notes.
    # The responder Lambda: its name or ARN (the stack output ResponderFunctionName).
    playbook_settings__function_name = "iot-defender-splunk-responder"
    # quarantine_thing options (docs/response.md): keep the certificates active; end the session.
    playbook_settings__keep_certificate = False
    playbook_settings__disconnect = True
    # More devices than this in one container is a fleet event: the playbook acts on none of them.
    playbook_settings__max_devices = 10

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="playbook_settings:function_name", value=json.dumps(playbook_settings__function_name))
    phantom.save_run_data(key="playbook_settings:keep_certificate", value=json.dumps(playbook_settings__keep_certificate))
    phantom.save_run_data(key="playbook_settings:disconnect", value=json.dumps(playbook_settings__disconnect))
    phantom.save_run_data(key="playbook_settings:max_devices", value=json.dumps(playbook_settings__max_devices))

    collect_devices(container=container)

    return


@phantom.playbook_block()
def collect_devices(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("collect_devices() called")

    ################################################################################
    # This block uses custom code: groups the alerts by device with their volumes,
    # baselines and destinations, checks the thing names and builds one
    # describe_thing request per device, unless the container names too many.
    ################################################################################

    filtered_artifact_0_data_select_exfil_alerts = phantom.collect2(container=container, datapath=["filtered-data:select_exfil_alerts:condition_1:artifact:*.cef.thing","filtered-data:select_exfil_alerts:condition_1:artifact:*.cef"])
    playbook_settings__max_devices = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:max_devices")) != "" else "null")  # pylint: disable=used-before-assignment

    filtered_artifact_0__cef_thing = [item[0] for item in filtered_artifact_0_data_select_exfil_alerts]
    filtered_artifact_0__cef = [item[1] for item in filtered_artifact_0_data_select_exfil_alerts]

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
    import time

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
        # serves send different fields, so one an alert does not send gives no values. Only
        # thing, which every one of them sends, is collected by name.
        return values(cef.get(name) if isinstance(cef, dict) else None)

    def request_id(step, target):
        # The responder's idempotency key: the same container, step and target give the same key,
        # so a re-run of this step replays the first answer instead of acting twice.
        digest = hashlib.sha256(target.encode("utf-8")).hexdigest()[:12]
        return f"soar-{container['id']}-{step}-{digest}"

    def when(texts):
        # Splunk's epoch seconds as UTC time; anything else as it is.
        text = " ".join(texts)
        try:
            return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(float(text)))
        except (ValueError, OverflowError, OSError):
            return text

    def suffix(label, texts):
        text = ", ".join(texts)
        return f" {label} {text}" if text else ""

    def alert_findings(cef):
        # Volume, baseline and destinations of one alert, in words: each detection sends some.
        spiking = cef_values(cef, "spiking_metrics")
        spikes = cef_values(cef, "spikes")
        max_volume = cef_values(cef, "max_volume")
        rising = cef_values(cef, "rising_metrics")
        daily = cef_values(cef, "daily_volumes")
        new = cef_values(cef, "new_destinations")
        first_new = cef_values(cef, "first_new_destination")
        destination = cef_values(cef, "destination")
        ports = cef_values(cef, "dest_ports")
        connections = cef_values(cef, "connections")
        findings = [f"outbound spike {spike}" for spike in spikes]
        findings += [f"baseline of {n} datapoints" for n in cef_values(cef, "baseline_samples")]
        if spiking and not spikes:
            findings.append(f"outbound spike in {', '.join(spiking)}{suffix('up to', max_volume)}")
        findings += [f"daily outbound volume {volume}" for volume in daily]
        findings += [f"baseline of {n} days" for n in cef_values(cef, "baseline_days")]
        if rising and not daily:
            findings.append(f"daily outbound volume rising in {', '.join(rising)}")
        if new:
            since = f" since {when(first_new)}" if first_new else ""
            findings.append(f"new destinations {', '.join(new)}{suffix('ports', ports)}{since}")
        for ip in cef_values(cef, "dest_ip"):
            # destination is the CIDR the address is in; a host's own /32 or /128 adds nothing.
            name = [d for d in destination if d.split("/")[0] != ip]
            named = f" ({', '.join(name)})" if name else ""
            count = f", {' '.join(connections)} connections" if connections else ""
            findings.append(
                f"destination outside the allowed CIDRs {ip}{named}{suffix('ports', ports)}{count}"
            )
        return findings

    devices = {}
    collect_devices__ignored = []
    for things, cef in zip(filtered_artifact_0__cef_thing, filtered_artifact_0__cef):
        findings = alert_findings(cef)
        for thing in values(things):
            if not re.fullmatch(r"[a-zA-Z0-9:_-]{1,128}", thing):
                collect_devices__ignored.append(thing)
                continue
            device = devices.setdefault(thing, {"thing": thing, "findings": []})
            device["findings"] += [f for f in findings if f not in device["findings"]]

    collect_devices__devices = [devices[thing] for thing in sorted(devices)]
    for device in collect_devices__devices:
        device["describe_request_id"] = request_id("exfil-describe", device["thing"])
        device["quarantine_request_id"] = request_id("exfil-quarantine", device["thing"])

    collect_devices__describe_requests = []
    if not collect_devices__devices:
        collect_devices__scope = "none"
        collect_devices__scope_comment = (
            "IoT Exfiltration Containment: no artifact names a valid thing"
            f" (ignored: {', '.join(collect_devices__ignored) or 'none'}); nothing was done."
        )
    elif len(collect_devices__devices) > playbook_settings__max_devices:
        collect_devices__scope = "fleet"
        collect_devices__scope_comment = (
            f"IoT Exfiltration Containment: {len(collect_devices__devices)} devices in one"
            f" container, more than the {playbook_settings__max_devices} this playbook acts on;"
            " nothing was done."
            " Quarantine a fleet with the responder's quarantine_group or quarantine_version."
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
    # Goes on when the alerts name between one device and the largest number the
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
    # Reads each device (groups, quarantine, certificates, connectivity) with the
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
    # This block uses custom code: decides per device, skipping a protected,
    # quarantined or unreadable device, and lists the others for the analyst.
    ################################################################################

    describe_devices_result_data = phantom.collect2(container=container, datapath=["describe_devices:action_result.parameter.payload","describe_devices:action_result.status","describe_devices:action_result.message","describe_devices:action_result.data.*.Payload"], action_results=results)
    collect_devices__devices = json.loads(_ if (_ := phantom.get_run_data(key="collect_devices:devices")) != "" else "null")  # pylint: disable=used-before-assignment
    playbook_settings__keep_certificate = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:keep_certificate")) != "" else "null")  # pylint: disable=used-before-assignment
    playbook_settings__disconnect = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:disconnect")) != "" else "null")  # pylint: disable=used-before-assignment

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
        elif state.get("protected"):
            entry["decision"], entry["why"] = "skip", "in a protected thing group"
        elif state.get("quarantined"):
            entry["decision"], entry["why"] = "skip", "already quarantined"
        else:
            entry["decision"], entry["why"] = (
                "ask",
                "an analyst approves every exfiltration quarantine",
            )
        assess_devices__assessment.append(entry)

    candidates = [entry for entry in assess_devices__assessment if entry["decision"] != "skip"]
    assess_devices__route = "ask" if candidates else "none"

    lines = [
        "| Device | Alert | Groups | Connected | Certificates |",
        "| --- | --- | --- | --- | --- |",
    ]
    for entry in candidates:
        state = entry["state"]
        connectivity = state.get("connectivity") or {}
        connected = {True: "yes", False: "no"}.get(connectivity.get("connected"), "unknown")
        certificates = ", ".join(
            f"{c['certificate_id'][:12]} {c['status']}" for c in state.get("certificates") or []
        )
        groups = ", ".join(state.get("groups") or [])
        lines.append(
            f"| {entry['thing']} | {'; '.join(entry['findings'])} | {groups}"
            f" | {connected} | {certificates or 'none'} |"
        )
    effects = (
        "its certificates stay active"
        if playbook_settings__keep_certificate
        else "its active certificates are deactivated (one another thing shares stays active)",
        "its MQTT session is ended" if playbook_settings__disconnect else "its MQTT session stays",
    )
    assess_devices__approval_summary = (
        f"For each device, {effects[0]} and {effects[1]}.\n\n" + "\n".join(lines)
    )

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="assess_devices:assessment", value=json.dumps(assess_devices__assessment))
    phantom.save_run_data(key="assess_devices:route", value=json.dumps(assess_devices__route))
    phantom.save_run_data(key="assess_devices:approval_summary", value=json.dumps(assess_devices__approval_summary))

    approval_route(container=container)

    return


@phantom.playbook_block()
def approval_route(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("approval_route() called")

    ################################################################################
    # Asks the analyst when a device is left to quarantine, and only reports
    # otherwise.
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
        format_approval_request(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    join_summarize_outcome(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def format_approval_request(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("format_approval_request() called")

    ################################################################################
    # Formats the approval request: the container and, per device, the alert and its
    # current state.
    ################################################################################

    template = """SOAR container {0} ({1}) reports devices sending unusual volumes or to destinations outside their allowed networks. Quarantine adds each device below to the quarantine thing group, whose policy denies every AWS IoT action. {2}"""

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

    phantom.format(container=container, template=template, parameters=parameters, name="format_approval_request")

    approve_quarantine(container=container)

    return


@phantom.playbook_block()
def approve_quarantine(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("approve_quarantine() called")

    ################################################################################
    # Asks the analyst to approve the quarantine of the devices listed.
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
            "prompt": "Quarantine these devices?",
            "options": {
                "type": "list",
                "choices": [
                    "Yes",
                    "No"
                ],
            },
        }
    ]

    phantom.prompt2(container=container, user=user, role=role, message=message, respond_in_mins=60, name="approve_quarantine", parameters=parameters, response_types=response_types, callback=quarantine_approved)

    return


@phantom.playbook_block()
def quarantine_approved(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("quarantine_approved() called")

    ################################################################################
    # Goes on only when the analyst answered Yes; a No or no answer is reported.
    ################################################################################

    # check for 'if' condition 1
    found_match_1 = phantom.decision(
        container=container,
        conditions=[
            ["approve_quarantine:action_result.summary.responses.0", "==", "Yes"]
        ],
        delimiter=None)

    # call connected blocks if condition 1 matched
    if found_match_1:
        build_quarantine_requests(action=action, success=success, container=container, results=results, handle=handle)
        return

    # check for 'else' condition 2
    join_summarize_outcome(action=action, success=success, container=container, results=results, handle=handle)

    return


@phantom.playbook_block()
def build_quarantine_requests(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("build_quarantine_requests() called")

    ################################################################################
    # This block uses custom code: one quarantine_thing request per approved device,
    # naming the playbook and the approver, with the alert as the reason.
    ################################################################################

    approve_quarantine_result_data = phantom.collect2(container=container, datapath=["approve_quarantine:action_result.data.*.user"], action_results=results)
    assess_devices__assessment = json.loads(_ if (_ := phantom.get_run_data(key="assess_devices:assessment")) != "" else "null")  # pylint: disable=used-before-assignment
    playbook_settings__keep_certificate = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:keep_certificate")) != "" else "null")  # pylint: disable=used-before-assignment
    playbook_settings__disconnect = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:disconnect")) != "" else "null")  # pylint: disable=used-before-assignment

    approve_quarantine_result_item_0 = [item[0] for item in approve_quarantine_result_data]

    build_quarantine_requests__requests = None

    ################################################################################
    ## Custom Code Start
    ################################################################################

    def printable(text, limit):
        return "".join(ch for ch in str(text) if ch.isprintable())[:limit]

    approver = next((user for user in approve_quarantine_result_item_0 if user), "unknown")
    requested_by = printable(f"soar:iot_exfiltration_containment:approved-by:{approver}", 256)

    build_quarantine_requests__requests = []
    for entry in assess_devices__assessment:
        if entry["decision"] == "skip":
            continue
        reason = (
            f"{container.get('name')} (SOAR container {container['id']}): {entry['thing']}:"
            f" {'; '.join(entry['findings'])}"
        )
        request = {
            "action": "quarantine_thing",
            "request_id": entry["quarantine_request_id"],
            "requested_by": requested_by,
            "reason": printable(reason, 2048),
            "thing_name": entry["thing"],
            "keep_certificate": playbook_settings__keep_certificate,
            "disconnect": playbook_settings__disconnect,
        }
        build_quarantine_requests__requests.append(json.dumps(request))

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.save_run_data(key="build_quarantine_requests:requests", value=json.dumps(build_quarantine_requests__requests))

    quarantine_devices(container=container)

    return


@phantom.playbook_block()
def quarantine_devices(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None, filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    phantom.debug("quarantine_devices() called")

    # phantom.debug('Action: {0} {1}'.format(action['name'], ('SUCCEEDED' if success else 'FAILED')))

    ################################################################################
    # Quarantines the approved devices with the responder's quarantine_thing. This
    # block uses custom code: one invocation per device.
    ################################################################################

    playbook_settings__function_name = json.loads(_ if (_ := phantom.get_run_data(key="playbook_settings:function_name")) != "" else "null")  # pylint: disable=used-before-assignment
    build_quarantine_requests__requests = json.loads(_ if (_ := phantom.get_run_data(key="build_quarantine_requests:requests")) != "" else "null")  # pylint: disable=used-before-assignment

    parameters = []

    if playbook_settings__function_name is not None:
        parameters.append({
            "payload": build_quarantine_requests__requests,
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
        for request in build_quarantine_requests__requests
    ]

    ################################################################################
    ## Custom Code End
    ################################################################################

    phantom.act("invoke lambda", parameters=parameters, name="quarantine_devices", assets=["aws_lambda"], callback=join_summarize_outcome)

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
    # This block uses custom code: writes the note (per device the alert, the
    # decision and the responder answer with the state before and after) and a one-
    # line comment. Refused and failed answers are reported as such, never as a
    # quarantine.
    ################################################################################

    approve_quarantine_result_data = phantom.collect2(container=container, datapath=["approve_quarantine:action_result.summary.responses.0","approve_quarantine:action_result.data.*.user"], action_results=results)
    quarantine_devices_result_data = phantom.collect2(container=container, datapath=["quarantine_devices:action_result.parameter.payload","quarantine_devices:action_result.status","quarantine_devices:action_result.message","quarantine_devices:action_result.data.*.Payload"], action_results=results)
    assess_devices__assessment = json.loads(_ if (_ := phantom.get_run_data(key="assess_devices:assessment")) != "" else "null")  # pylint: disable=used-before-assignment
    assess_devices__route = json.loads(_ if (_ := phantom.get_run_data(key="assess_devices:route")) != "" else "null")  # pylint: disable=used-before-assignment
    collect_devices__ignored = json.loads(_ if (_ := phantom.get_run_data(key="collect_devices:ignored")) != "" else "null")  # pylint: disable=used-before-assignment

    approve_quarantine_summary_responses_0 = [item[0] for item in approve_quarantine_result_data]
    approve_quarantine_result_item_1 = [item[1] for item in approve_quarantine_result_data]
    quarantine_devices_parameter_payload = [item[0] for item in quarantine_devices_result_data]
    quarantine_devices_status = [item[1] for item in quarantine_devices_result_data]
    quarantine_devices_message = [item[2] for item in quarantine_devices_result_data]
    quarantine_devices_result_item_3 = [item[3] for item in quarantine_devices_result_data]

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
        if state.get("disconnected"):
            parts.append("disconnected")
        return "; ".join(parts)

    def outcome(status, message, answer):
        # (headline, detail, target) of one quarantine_thing invocation; success only when the
        # responder says so and its after state shows the device quarantined.
        if status != "success" or not isinstance(answer, dict):
            detail = answer.get("errorMessage") if isinstance(answer, dict) else None
            return (
                "not quarantined",
                f"the invoke lambda action failed: {detail or message}",
                None,
                None,
            )
        targets = answer.get("targets") or [{}]
        target = targets[0]
        kind = target.get("status", answer.get("status"))
        text = f"{answer.get('status')}: {answer.get('message')}"
        if answer.get("status") == "error" and answer.get("error"):
            text += f" [{answer['error'].get('code')}]"
        if kind in ("ok", "noop"):
            if (target.get("after") or {}).get("quarantined"):
                return (
                    ("quarantined" if kind == "ok" else "already quarantined"),
                    text,
                    target,
                    answer.get("response_id"),
                )
            text += " (but its after state is not quarantined)"
        return "not quarantined", text, target, answer.get("response_id")

    responses = [r for r in approve_quarantine_summary_responses_0 if r]
    approver = next((user for user in approve_quarantine_result_item_1 if user), "unknown")
    if assess_devices__route == "auto":
        approval = "auto-approved: a port on the auto-approve list"
    elif assess_devices__route == "none":
        approval = "not asked: no device to quarantine"
    elif responses and responses[0] == "Yes":
        approval = f"approved by {approver}"
    elif responses:
        approval = f"declined by {approver}"
    else:
        approval = "no answer before the prompt expired"

    outcomes = {}
    rows = zip(
        quarantine_devices_parameter_payload,
        quarantine_devices_status,
        quarantine_devices_message,
        quarantine_devices_result_item_3,
    )
    for payload, status, message, answer in rows:
        outcomes[json.loads(payload)["thing_name"]] = outcome(status, message, answer)

    heading = f"SOAR container {container['id']}: {container.get('name')}"
    lines = [f"IoT Exfiltration Containment for {heading}.", "", f"Approval: {approval}."]
    if collect_devices__ignored:
        lines += ["", f"Ignored, not thing names: {', '.join(collect_devices__ignored)}."]
    phrases = []
    for entry in assess_devices__assessment:
        thing = entry["thing"]
        details = [f"- Alert: {'; '.join(entry['findings'])}"]
        if thing in outcomes:
            headline, text, target, response = outcomes[thing]
            ids = f"request {entry['quarantine_request_id']}" + (
                f", response {response}" if response else ""
            )
            details.append(f"- Responder: {text} ({ids})")
            details += [
                f"- {when.capitalize()}: {show(target[when])}"
                for when in ("before", "after")
                if target and target.get(when)
            ]
            detail = text if headline == "not quarantined" else ""
        else:
            headline = "not quarantined"
            detail = entry["why"] if entry["decision"] == "skip" else ""
            details.append(f"- Not quarantined: {detail or approval}")
            if entry["state"]:
                details.append(f"- State: {show(entry['state'])}")
        lines += ["", f"#### {thing}: {headline}", *details]
        phrases.append(f"{thing} {headline}" + (f" ({detail})" if detail else ""))

    summarize_outcome__note = "\n".join(lines)
    summarize_outcome__comment = (
        f"IoT Exfiltration Containment ({approval}): " + "; ".join(phrases) + "."
    )

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

    phantom.add_note(container=container, content=summarize_outcome__note, note_format="markdown", note_type="general", title="IoT Exfiltration Containment")

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
