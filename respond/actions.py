"""The response actions: each reads first, refuses what the guard rails forbid, plans, and only
then changes AWS IoT, one thing at a time, whole or not at all.

Every action returns its targets; the handler turns them into the answer and the audit trail.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from botocore.exceptions import BotoCoreError, ClientError

from respond import things
from respond.requests import Request
from respond.settings import Settings
from respond.store import AlreadyRecordedError, QuarantineRecord, QuarantineStore
from shared.aws import IotClient, error_code

if TYPE_CHECKING:
    from mypy_boto3_iot.type_defs import AuditMitigationActionsTaskTargetTypeDef as AuditTarget

OK, NOOP, PLANNED, REFUSED, ERROR = "ok", "noop", "planned", "refused", "error"
INACTIVE: Final = "INACTIVE"
ACTIVE: Final = "ACTIVE"
CertificateStatus = Literal["ACTIVE", "INACTIVE"]


@dataclass
class Target:
    """One thing, certificate or finding set the request acts on, and what became of it."""

    status: str
    message: str
    key: dict[str, Any]  # thing_name, certificate_id, or the audit target
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {**self.key, "status": self.status, "message": self.message}
        if self.before is not None:
            shown["before"] = self.before
        if self.after is not None:
            shown["after"] = self.after
        if self.error is not None:
            shown["error"] = self.error
        return shown


@dataclass(frozen=True)
class _Plan:
    """What a quarantine of one thing will do, worked out before anything changes."""

    key: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    deactivate: list[str]
    summary: str


def failure(error: Exception) -> dict[str, str]:
    """An AWS failure as the answer reports it: the AWS error code and its message."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return {"code": error_code(error), "message": str(details.get("Message", ""))[:512]}
    return {"code": type(error).__name__, "message": str(error)[:512]}


@dataclass
class Responder:
    settings: Settings
    iot: IotClient
    store: QuarantineStore
    disconnect: Callable[[str], str]  # client id -> what became of its session ("ended", ...)
    # Detect's active violations of a thing, or None when Detect cannot be asked.
    violations: Callable[[str], list[dict[str, Any]] | None] | None = None
    clock: Callable[[], float] = time.time

    # --- describe ---------------------------------------------------------------------------

    def describe_thing(self, request: Request) -> list[Target]:
        name = request["thing_name"]
        key = {"thing_name": name}
        try:
            described = self.iot.describe_thing(thingName=name)
            state = things.read_state(self.iot, name, self.settings.quarantine_group)
        except (ClientError, BotoCoreError) as error:
            return [Target(ERROR, f"cannot describe {name}", key, error=failure(error))]
        record = self.store.get(name)
        description = {
            "thing_name": name,
            "thing_type": described.get("thingTypeName"),
            "attributes": described.get("attributes", {}),
            **state.as_dict(),
            "protected": bool(set(state.groups) & self.settings.protected_groups),
            "principals": state.principals,
            "connectivity": things.connectivity(self.iot, name),
            "violations": (self.violations or self._violations)(name),
            "quarantine": record.summary() if record else None,
        }
        return [Target(OK, f"described {name}", key, description, description)]

    # --- quarantine and release of one thing ---------------------------------------------------

    def quarantine_thing(self, request: Request, name: str | None = None) -> Target:
        name = name or request["thing_name"]
        key = {"thing_name": name}
        state = self._read(name)
        if isinstance(state, Target):
            return state
        before = state.as_dict()
        protected = sorted(set(state.groups) & self.settings.protected_groups)
        if protected:
            reason = f"{name} is in protected thing group {', '.join(protected)}: never quarantined"
            return Target(REFUSED, reason, key, before)
        record = self.store.get(name)
        if record and not state.quarantined:
            reason = (
                f"{name} has a quarantine record (request {record.request_id}) but is not in "
                f"{self.settings.quarantine_group}: that quarantine is still running, or the "
                "thing was taken out of the group by hand (release it, then quarantine it again)"
            )
            return Target(REFUSED, reason, key, before)
        if state.quarantined:
            return Target(NOOP, f"{name} is already quarantined", key, before, before)
        deactivate = (
            []
            if request["keep_certificate"]
            else [
                c.certificate_id
                for c in state.certificates
                if c.status == ACTIVE and not c.shared_with
            ]
        )
        kept_shared = [
            c.certificate_id for c in state.certificates if c.status == ACTIVE and c.shared_with
        ]
        after = _quarantined(before, self.settings.quarantine_group, deactivate)
        summary = _quarantine_summary(name, self.settings.quarantine_group, deactivate, kept_shared)
        if request.dry_run:
            return Target(PLANNED, f"would have {summary}", key, before, after)
        return self._apply_quarantine(request, _Plan(key, before, after, deactivate, summary))

    def _apply_quarantine(self, request: Request, plan: _Plan) -> Target:
        key, before, after, deactivate, summary = (
            plan.key,
            plan.before,
            plan.after,
            plan.deactivate,
            plan.summary,
        )
        name = key["thing_name"]
        claim = QuarantineRecord(
            name,
            request.request_id,
            request.requested_by,
            request.reason,
            self.clock(),
            deactivated_certificates=deactivate,
        )
        try:
            self.store.begin(claim)
        except AlreadyRecordedError:
            return Target(NOOP, f"{name} is already being quarantined", key, before, before)
        done: list[Callable[[], object]] = []
        try:
            self.iot.add_thing_to_thing_group(
                thingGroupName=self.settings.quarantine_group,
                thingName=name,
                overrideDynamicGroups=True,
            )
            done.append(
                lambda: self.iot.remove_thing_from_thing_group(
                    thingGroupName=self.settings.quarantine_group, thingName=name
                )
            )
            for certificate in deactivate:
                self.iot.update_certificate(certificateId=certificate, newStatus=INACTIVE)
                done.append(_setter(self.iot, certificate, ACTIVE))
        except (ClientError, BotoCoreError) as error:
            return self._undo(done, key, before, error, what="quarantine")
        if request["disconnect"]:
            after["session"] = self.disconnect(name)
            summary += f", session {after['session']}"
        return Target(OK, summary, key, before, after)

    def release_thing(self, request: Request, name: str | None = None) -> Target:
        name = name or request["thing_name"]
        key = {"thing_name": name}
        state = self._read(name)
        if isinstance(state, Target):
            return state
        before = state.as_dict()
        record = self.store.get(name)
        if record is None:
            if state.quarantined:
                reason = (
                    f"{name} was put in {self.settings.quarantine_group} by something other than "
                    "the responder (a mitigation action?): there is no record of what to restore; "
                    "remove it from the group there"
                )
                return Target(REFUSED, reason, key, before)
            return Target(NOOP, f"{name} is not quarantined", key, before, before)
        inactive = {c.certificate_id for c in state.certificates if c.status == INACTIVE}
        reactivate = [c for c in record.deactivated_certificates if c in inactive]
        # The record is the responder's own quarantine: the group is left if the thing is in it.
        leave_group = state.quarantined
        after = _released(before, self.settings.quarantine_group, reactivate)
        summary = f"released {name}: " + ", ".join(
            [f"removed from {self.settings.quarantine_group}"] * leave_group
            + [f"{len(reactivate)} certificate(s) reactivated"]
        )
        if request.dry_run:
            return Target(PLANNED, f"would have {summary}", key, before, after)
        done: list[Callable[[], object]] = []
        try:
            if leave_group:
                self.iot.remove_thing_from_thing_group(
                    thingGroupName=self.settings.quarantine_group, thingName=name
                )
                done.append(
                    lambda: self.iot.add_thing_to_thing_group(
                        thingGroupName=self.settings.quarantine_group,
                        thingName=name,
                        overrideDynamicGroups=True,
                    )
                )
            for certificate in reactivate:
                self.iot.update_certificate(certificateId=certificate, newStatus=ACTIVE)
                done.append(_setter(self.iot, certificate, INACTIVE))
            self.store.delete(name)
        except (ClientError, BotoCoreError) as error:
            return self._undo(done, key, before, error, what="release", keep_record=True)
        return Target(OK, summary, key, before, after)

    def _read(self, name: str) -> things.ThingState | Target:
        """The thing's state, or the error target that reading it gave."""
        try:
            return things.read_state(self.iot, name, self.settings.quarantine_group)
        except (ClientError, BotoCoreError) as error:
            return Target(ERROR, f"cannot read {name}", {"thing_name": name}, error=failure(error))

    def _undo(
        self,
        done: list[Callable[[], object]],
        key: dict[str, Any],
        before: dict[str, Any],
        error: Exception,
        *,
        what: str,
        keep_record: bool = False,
    ) -> Target:
        """Undo the steps already taken for this thing, newest first: whole or not at all."""
        name = key["thing_name"]
        undo_failed: list[str] = []
        for step in reversed(done):
            try:
                step()
            except (ClientError, BotoCoreError) as undo_error:
                undo_failed.append(failure(undo_error)["code"])
        if not keep_record and not undo_failed:
            self.store.delete(name)
        message = f"{what} of {name} failed; the steps taken were undone"
        if undo_failed:
            message = (
                f"{what} of {name} failed and undoing it failed too ({', '.join(undo_failed)}): "
                "the record is kept, so release can finish the job"
            )
        return Target(ERROR, message, key, before, error=failure(error))

    # --- fleet-wide ---------------------------------------------------------------------------

    def fleet(self, request: Request, one: Callable[[Request, str], Target]) -> list[Target]:
        """``one`` for every thing of a group or of an attribute value, behind the guard rails."""
        group = request.params.get("thing_group")
        scope = f"thing group {group}" if group else f"{request['attribute']} = {request['value']}"
        if group in self.settings.protected_groups or group == self.settings.quarantine_group:
            return [
                Target(
                    REFUSED, f"{scope} is protected: never a fleet target", {"thing_group": group}
                )
            ]
        cap = self.settings.fleet_cap
        try:
            names = (
                things.things_in_group(self.iot, group, cap)
                if group
                else things.things_with_attribute(
                    self.iot, request["attribute"], request["value"], cap
                )
            )
        except (ClientError, BotoCoreError) as error:
            return [
                Target(
                    ERROR,
                    f"cannot list the things of {scope}",
                    _scope_key(request),
                    error=failure(error),
                )
            ]
        if len(names) > cap:
            return [
                Target(
                    REFUSED,
                    f"{scope} holds more than the cap of {cap} things (FleetActionCap)",
                    _scope_key(request),
                )
            ]
        if len(names) != request["expected_count"]:
            return [
                Target(
                    REFUSED,
                    f"{scope} holds {len(names)} things, "
                    f"not expected_count {request['expected_count']}",
                    _scope_key(request),
                )
            ]
        return [one(request, name) for name in names]

    # --- certificates and audit findings ------------------------------------------------------

    def deactivate_certificate(self, request: Request) -> list[Target]:
        certificate = request["certificate_id"]
        key = {"certificate_id": certificate}
        try:
            described = self.iot.describe_certificate(certificateId=certificate)[
                "certificateDescription"
            ]
            attached = things.things_of_certificate(self.iot, described["certificateArn"])
        except (ClientError, BotoCoreError) as error:
            return [
                Target(ERROR, f"cannot read certificate {certificate}", key, error=failure(error))
            ]
        before = {"status": described["status"], "things": attached}
        if described["status"] != ACTIVE:
            return [
                Target(NOOP, f"certificate is already {described['status']}", key, before, before)
            ]
        after = {**before, "status": INACTIVE}
        summary = f"deactivated certificate {certificate[:12]}… used by {len(attached)} thing(s)"
        if request.dry_run:
            return [Target(PLANNED, f"would have {summary}", key, before, after)]
        try:
            self.iot.update_certificate(certificateId=certificate, newStatus=INACTIVE)
        except (ClientError, BotoCoreError) as error:
            return [
                Target(
                    ERROR,
                    f"cannot deactivate certificate {certificate}",
                    key,
                    before,
                    error=failure(error),
                )
            ]
        return [Target(OK, summary, key, before, after)]

    def remediate_audit_finding(self, request: Request) -> list[Target]:
        findings = request["finding_ids"]
        key: dict[str, Any] = (
            {"finding_ids": findings}
            if findings
            else {"audit_task_id": request["audit_task_id"], "check_name": request["check_name"]}
        )
        try:
            checks = (
                sorted({self._check_of(finding) for finding in findings})
                if findings
                else [request["check_name"]]
            )
        except (ClientError, BotoCoreError) as error:
            return [Target(ERROR, "cannot read the findings", key, error=failure(error))]
        missing = [check for check in checks if check not in self.settings.mitigation_actions]
        if missing:
            known = ", ".join(sorted(self.settings.mitigation_actions)) or "none"
            return [
                Target(
                    REFUSED,
                    f"the stack has no mitigation action for {', '.join(missing)} "
                    f"(it has: {known})",
                    key,
                )
            ]
        mapping = {check: [self.settings.mitigation_actions[check]] for check in checks}
        task_id = f"iot-defender-{request.request_id}"
        plan = {"task_id": task_id, "actions": mapping}
        if request.dry_run:
            return [
                Target(PLANNED, f"would have started mitigation task {task_id}", key, None, plan)
            ]
        return [self._start_mitigation(request, key, plan)]

    def _start_mitigation(
        self, request: Request, key: dict[str, Any], plan: dict[str, Any]
    ) -> Target:
        findings = request["finding_ids"]
        task_id = plan["task_id"]
        target: AuditTarget = (
            {"findingIds": findings} if findings else {"auditTaskId": request["audit_task_id"]}
        )
        try:
            self.iot.start_audit_mitigation_actions_task(
                taskId=task_id,
                target=target,
                auditCheckToActionsMapping=plan["actions"],
                clientRequestToken=request.request_id,
            )
        except ClientError as error:
            if error_code(error) == "TaskAlreadyExistsException":
                return Target(NOOP, f"mitigation task {task_id} already started", key, None, plan)
            return Target(ERROR, "cannot start the mitigation task", key, error=failure(error))
        except BotoCoreError as error:
            return Target(ERROR, "cannot start the mitigation task", key, error=failure(error))
        return Target(OK, f"started mitigation task {task_id}", key, None, plan)

    def _violations(self, name: str) -> list[dict[str, Any]] | None:
        return things.active_violations(self.iot, name)

    def _check_of(self, finding_id: str) -> str:
        finding = self.iot.describe_audit_finding(findingId=finding_id)["finding"]
        return str(finding["checkName"])


def _setter(iot: IotClient, certificate: str, status: CertificateStatus) -> Callable[[], object]:
    return lambda: iot.update_certificate(certificateId=certificate, newStatus=status)


def _quarantined(before: dict[str, Any], group: str, deactivated: list[str]) -> dict[str, Any]:
    return {
        "groups": sorted({*before["groups"], group}),
        "quarantined": True,
        "certificates": [
            {**c, "status": INACTIVE} if c["certificate_id"] in deactivated else c
            for c in before["certificates"]
        ],
    }


def _released(before: dict[str, Any], group: str, reactivated: list[str]) -> dict[str, Any]:
    return {
        "groups": [g for g in before["groups"] if g != group],
        "quarantined": False,
        "certificates": [
            {**c, "status": ACTIVE} if c["certificate_id"] in reactivated else c
            for c in before["certificates"]
        ],
    }


def _quarantine_summary(name: str, group: str, deactivated: list[str], shared: list[str]) -> str:
    parts = [
        f"quarantined {name}: added to {group}",
        f"{len(deactivated)} certificate(s) deactivated",
    ]
    if shared:
        parts.append(
            f"{len(shared)} shared certificate(s) left active ({', '.join(c[:12] for c in shared)})"
        )
    return ", ".join(parts)


def _scope_key(request: Request) -> dict[str, Any]:
    if "thing_group" in request.params:
        return {"thing_group": request["thing_group"]}
    return {"attribute": request["attribute"], "value": request["value"]}
