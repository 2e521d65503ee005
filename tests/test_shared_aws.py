"""Reading an AWS error code, whatever shape of exception a client raised."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from shared.aws import error_code


def test_a_client_errors_code_is_read() -> None:
    error = ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}}, "X")
    assert error_code(error) == "ThrottlingException"


class _AnsweredError(Exception):
    def __init__(self, response: object) -> None:
        super().__init__("answered")
        self.response = response


@pytest.mark.parametrize(
    "error",
    [
        EndpointConnectionError(endpoint_url="https://iot.eu-west-1.amazonaws.com"),
        ValueError("You must specify a region."),
        _AnsweredError({"Error": {"Message": "no code"}}),
        _AnsweredError({"Error": "ThrottlingException"}),
        _AnsweredError({"ResponseMetadata": {}}),
        _AnsweredError("ThrottlingException"),
    ],
    ids=["no-response", "not-an-aws-error", "no-code", "error-not-a-dict", "no-error", "text"],
)
def test_anything_else_has_no_code(error: Exception) -> None:
    assert error_code(error) == ""


def test_a_code_that_is_not_text_is_read_as_text() -> None:
    assert error_code(_AnsweredError({"Error": {"Code": 404}})) == "404"
