"""pyproject.toml: the wheel builds from a copy of the source tree, installs into a fresh venv,
and its ``iot-defender-splunk`` command runs there without the source tree on the path."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Caches, venvs and build output are not source; the build must not need them.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    ".*_cache",
    ".hypothesis",
    "__pycache__",
    "node_modules",
    "build",
    "dist",
    ".aws-sam",
    "*.egg-info",
)


def _run(*command: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    return subprocess.run(  # noqa: S603 - fixed commands on paths this test made
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("source") / "iot-defender-splunk"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    built = _run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--wheel-dir",
        out,
        source,
        cwd=out,
    )
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("iot_defender_splunk-*.whl")
    return path


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel; its dependencies are this venv's, through a .pth file."""
    root = tmp_path_factory.mktemp("venv")
    venv.create(root, with_pip=False)
    (site,) = root.glob("lib/python*/site-packages")
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    (entry_points,) = site.glob("*.dist-info/entry_points.txt")
    assert "iot-defender-splunk = iot_defender_splunk.cli:main" in entry_points.read_text()
    return root


def test_the_wheel_holds_the_toolkit_the_transform_and_its_data_but_no_repository_code(
    wheel: Path,
) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    packages = {name.split("/")[0] for name in names if not name.startswith("iot_defender_splunk-")}
    assert packages == {"iot_defender_splunk", "transform", "shared"}
    schemas = {Path(name).name for name in names if name.startswith("transform/schemas/")}
    assert schemas == {path.name for path in (REPO / "transform" / "schemas").glob("*.json")}
    assert "shared/data/audit_checks.json" in names
    assert "iot_defender_splunk/data/measured.json" in names
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names)


def test_the_installed_command_answers_help_and_its_version(
    installed: Path, tmp_path: Path
) -> None:
    python = installed / "bin" / "python"
    helped = _run(python, "-m", "iot_defender_splunk", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    assert "usage: iot-defender-splunk" in helped.stdout
    located = _run(
        python, "-c", "import transform, shared; print(transform.__file__)", cwd=tmp_path
    )
    assert Path(located.stdout.strip()).is_relative_to(installed), located.stderr
    versioned = _run(python, "-m", "iot_defender_splunk", "--version", cwd=tmp_path)
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert versioned.stdout.strip() == f"iot-defender-splunk {project['version']}"


def test_the_installed_capacity_command_sizes_from_its_packaged_figures(
    installed: Path, tmp_path: Path
) -> None:
    python = installed / "bin" / "python"
    sized = _run(python, "-m", "iot_defender_splunk", "capacity", "--devices", "1000", cwd=tmp_path)
    assert sized.returncode == 0, sized.stderr
    assert "Splunk license" in sized.stdout
