"""The Splunk app as `make package` builds it, for the tests that read the app's knowledge.

The hand-written sources in splunk_app/ are not the whole app: the build adds the filter macros,
the saved searches, the views and the generated lookups. Built once per test process.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from appbuild.build_app import build
from appbuild.spl.knowledge import Knowledge


@functools.cache
def built_app() -> Path:
    """The app directory of one build into a temporary folder, removed when the process ends."""
    out = Path(tempfile.mkdtemp(prefix="iot-defender-app-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    return build(out)


@functools.cache
def app_knowledge() -> Knowledge:
    """The built app's macros, lookups and eventtypes."""
    return Knowledge.from_app(built_app())
