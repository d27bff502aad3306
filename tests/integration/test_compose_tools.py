"""docker-compose.yml checked by the tools that run it: the compose schema validator, and
`--help` of every command compose, the Procfile and the docs name (each one a subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.unit.test_compose import APP, COMPOSE_PATH, ROOT, _documented_commands, _module


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    schema = ("--builtin-schema", "vendor.compose-spec")
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *schema, str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def test_compose_file_matches_the_compose_schema(tmp_path: Path) -> None:
    checked = _validate(COMPOSE_PATH)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        COMPOSE_PATH.read_text().replace("service_completed_successfully", "when_it_feels_like")
    )
    assert _validate(broken).returncode != 0  # the validator does catch a bad file


HELP_DRIVER = """
import contextlib, io, json, runpy, sys
results = {}
for module, *sub in json.loads(sys.argv[1]):
    sys.argv = [module, *sub, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except Exception as error:
        code, out = 1, io.StringIO(repr(error))
    results[" ".join([module, *sub])] = [code, out.getvalue()]
print(json.dumps(results))
"""


def test_every_command_is_one_the_image_can_run() -> None:
    allowed = {
        line.strip().lstrip("!").rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    commands = {_module(service) for service in APP}
    commands |= {(module, tuple(sub)) for module, sub in _documented_commands()}
    for module, _ in commands:
        package = ROOT / module.replace(".", "/")
        assert (package / "__main__.py").is_file(), f"no {module}/__main__.py"
        assert module.split(".")[0] in allowed, f"{module} is not copied into the image"
    listed = json.dumps([[module, *sub] for module, sub in sorted(commands)])
    driver = subprocess.run(
        [sys.executable, "-c", HELP_DRIVER, listed],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert driver.returncode == 0, driver.stderr
    for command, (code, output) in json.loads(driver.stdout.splitlines()[-1]).items():
        assert code == 0, f"python -m {command} --help: {output}"
        assert "usage:" in output, command
    assert len(commands) >= 10
