"""The AWS session of the subcommands that call AWS: region and profile options, and deadlines.

Every call has a connect and a read timeout, and botocore's adaptive retries pace throttled
calls, so no subcommand waits on AWS for ever nor fails on the first ThrottlingException.
"""

from __future__ import annotations

import argparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

__all__ = ["CONFIG", "add_aws_arguments", "describe_error", "session"]

CONFIG = Config(
    connect_timeout=10,
    read_timeout=60,
    retries={"mode": "adaptive", "max_attempts": 10},
)


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    aws = parser.add_argument_group("AWS (credentials as boto3 finds them)")
    aws.add_argument("--region", help="AWS Region (default: the profile's or $AWS_REGION)")
    aws.add_argument("--profile", help="named profile of the AWS config files")


def session(args: argparse.Namespace) -> boto3.Session:
    return boto3.Session(profile_name=args.profile, region_name=args.region)


def describe_error(error: BotoCoreError | ClientError) -> str:
    """One line for an AWS failure: the API's code and message, or botocore's own text."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        operation = error.operation_name
        return f"{operation}: {details.get('Code', '?')}: {details.get('Message', '')}".strip()
    return str(error).replace("\n", " ")
