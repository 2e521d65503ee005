"""Base64 both ways: pybase64 (SIMD) when it is installed and accepts the input, else stdlib.

Correctness never depends on pybase64: whatever it refuses is decoded again by the stdlib,
whose verdict (bytes or an error) is the one that counts.
"""

from __future__ import annotations

import base64
import binascii
import importlib
from collections.abc import Callable
from types import ModuleType


def _optional_pybase64() -> ModuleType | None:
    try:
        return importlib.import_module("pybase64")
    except ImportError:  # the Lambda artefact and the dev venv ship it; correctness needs none
        return None


pybase64 = _optional_pybase64()

Decode = Callable[[str], bytes]
Encode = Callable[[bytes], str]


def stdlib_b64decode(text: str) -> bytes:
    """Strict decoding, as the reference path has always done it."""
    return base64.b64decode(text, validate=True)


def stdlib_b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def fast_b64decode(text: str) -> bytes:
    """Strict decoding; the stdlib has the last word on anything pybase64 refuses."""
    if pybase64 is not None:
        try:
            decoded: bytes = pybase64.b64decode(text, validate=True)
            return decoded
        except (binascii.Error, ValueError, TypeError):
            pass
    return stdlib_b64decode(text)


def fast_b64encode(data: bytes) -> str:
    if pybase64 is not None:
        encoded: str = pybase64.b64encode_as_string(data)
        return encoded
    return stdlib_b64encode(data)
