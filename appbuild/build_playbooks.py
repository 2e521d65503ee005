"""Package the SOAR playbooks as the .tgz files SOAR imports, one per playbook.

Each `soar/playbooks/<Name>.json` and `<Name>.py` pair (a Modern playbook as SOAR exports it)
becomes `<output>/<Name>.tgz` holding the two files, which Playbooks > Import Playbook takes.
The metadata (`<Name>.yml`) stays in the repository. The archives are reproducible: members in
name order, owned by root, mode 0644, dated SOURCE_DATE_EPOCH (0 when unset). `make package`
runs this; a problem stops it with one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "soar" / "playbooks"
OUTPUT = REPO / "dist" / "soar"
# Playbook names as the community repository has them: Title_Case words joined by underscores.
_NAME = re.compile(r"[0-9A-Z][0-9A-Za-z]*(?:_[0-9A-Z][0-9A-Za-z]*)*")


class PackagingError(Exception):
    """A playbook that cannot be packaged; the message says which and why, in one line."""


def playbook_names(source: Path) -> list[str]:
    """The playbooks in `source`: every name with both a .json and a .py."""
    if not source.is_dir():
        raise PackagingError(f"{source} is not a directory")
    exports = {p.stem for p in source.glob("*.json")}
    code = {p.stem for p in source.glob("*.py")}
    if not exports:
        raise PackagingError(f"no playbook (<Name>.json) in {source}")
    for name in sorted(exports ^ code):
        missing = ".py" if name in exports else ".json"
        raise PackagingError(f"{name}: {name}{missing} is missing in {source}")
    return sorted(exports)


def _checked(source: Path, name: str) -> tuple[bytes, bytes]:
    """The playbook's .json and .py, once they are a playbook export SOAR can import."""
    if not _NAME.fullmatch(name):
        raise PackagingError(f"{name}: playbook names are Title_Case words joined by underscores")
    export, code = (source / f"{name}.json").read_bytes(), (source / f"{name}.py").read_bytes()
    try:
        document = json.loads(export)
    except ValueError as error:
        raise PackagingError(f"{name}.json is not JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(
        document.get("coa", {}).get("data", {}).get("nodes"), dict
    ):
        raise PackagingError(f"{name}.json is not a playbook export (no coa.data.nodes)")
    try:
        compile(code, f"{name}.py", "exec")
    except SyntaxError as error:
        raise PackagingError(f"{name}.py line {error.lineno}: {error.msg}") from None
    return export, code


def _mtime() -> int:
    value = os.environ.get("SOURCE_DATE_EPOCH", "0")
    if not value.isdigit():
        raise PackagingError(f"SOURCE_DATE_EPOCH={value!r} is not a number of seconds")
    return int(value)


def archive(name: str, export: bytes, code: bytes, mtime: int) -> bytes:
    """The .tgz SOAR imports: `<name>.json` and `<name>.py` at its top level."""
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=mtime) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member, content in ((f"{name}.json", export), (f"{name}.py", code)):
            info = tarfile.TarInfo(member)
            info.size, info.mtime, info.mode = len(content), mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def build(source: Path, output: Path) -> list[Path]:
    """Writes `<output>/<Name>.tgz` for every playbook, once all of them are checked."""
    mtime = _mtime()
    archives = {
        name: archive(name, *_checked(source, name), mtime) for name in playbook_names(source)
    }
    output.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, content in archives.items():
        path = output / f"{name}.tgz"
        path.write_bytes(content)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m appbuild.build_playbooks",
        description="Package each SOAR playbook (<Name>.json, <Name>.py) as <Name>.tgz to import.",
    )
    parser.add_argument(
        "--source",
        type=Path,
        default=SOURCE,
        help=f"playbook directory (default: {SOURCE.relative_to(REPO)})",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=OUTPUT,
        help=f"where the .tgz go (default: {OUTPUT.relative_to(REPO)})",
    )
    args = parser.parse_args(argv)
    try:
        paths = build(args.source, args.output)
    except (PackagingError, OSError) as error:
        sys.stderr.write(f"build_playbooks: {error}\n")
        return 1
    sys.stdout.write("".join(f"{path}\n" for path in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
