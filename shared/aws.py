"""What every function needs to talk about AWS calls: client types and error codes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:  # the stubs are a development dependency; Lambda never imports them
    from mypy_boto3_iot import IoTClient

    IotClient: TypeAlias = IoTClient
else:
    IotClient: TypeAlias = Any


def error_code(error: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` (e.g. ``ThrottlingException``), else ''."""
    response = getattr(error, "response", None)
    if not isinstance(response, dict):
        return ""
    details = response.get("Error")
    return str(details.get("Code", "")) if isinstance(details, dict) else ""
