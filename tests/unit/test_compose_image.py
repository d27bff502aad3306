"""The image (Dockerfile, .dockerignore) can run what compose asks of it, as a non-root user."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _image_packages() -> list[str]:
    """Top-level directories .dockerignore lets into the image."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line[1:].rstrip("/") for line in lines if line.startswith("!") and line.endswith("/")]


def _runtime_distributions() -> set[str]:
    """The project's runtime dependencies and everything they pull in (with their extras)."""
    pending = [Requirement(text) for text in PROJECT["dependencies"]]
    seen: set[str] = set()
    while pending:
        requirement = pending.pop()
        name = requirement.name.lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        for text in metadata.requires(requirement.name) or []:
            child = Requirement(text)
            environments = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(e) for e in environments):
                pending.append(child)
    return seen


def _excluded_files() -> set[Path]:
    """Single files .dockerignore keeps out of otherwise allowed directories."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return {ROOT / line for line in lines if line.endswith(".py") and "*" not in line}


def _imports(package: str) -> dict[str, str]:
    """Absolute top-level imports of a package's modules in the image, with a file for each."""
    found: dict[str, str] = {}
    for path in sorted(set((ROOT / package).rglob("*.py")) - _excluded_files()):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def test_the_image_installs_every_module_the_services_import() -> None:
    runtime = _runtime_distributions()
    provided = {
        module
        for module, distributions in metadata.packages_distributions().items()
        if any(d.lower().replace("_", "-") in runtime for d in distributions)
    }
    local = set(_image_packages())
    for package in _image_packages():
        if not (ROOT / package).is_dir():
            continue
        for module, where in _imports(package).items():
            known = module in sys.stdlib_module_names or module in local or module in provided
            assert known, f"{where} imports {module}, which the image does not install"


def test_dockerfile_is_multi_stage_slim_non_root_and_pinned() -> None:
    stages = re.findall(r"^FROM (\S+) AS (\w+)$", DOCKERFILE, re.M)
    assert len(stages) >= 2, "a build stage and a runtime stage"
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in DOCKERFILE
    assert all(image == "${PYTHON_IMAGE}" for image, _ in stages)
    assert "-c constraints.txt" in DOCKERFILE
    assert "COPY pyproject.toml constraints.txt ./" in DOCKERFILE  # dependencies: own layer
    install = DOCKERFILE.index("pip install")
    assert install < DOCKERFILE.index("COPY . /app"), "dependencies before the code"
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert user, "the runtime names its user"
    assert user[-1] not in ("root", "0"), "the runtime runs as a non-root user"


def test_no_secret_or_local_state_goes_into_the_image() -> None:
    allowed = set(_image_packages())
    assert not allowed & {".env", ".venv", ".git", "tests", "bench", "chaos", "docs"}
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "an allow-list: everything not named stays out"
