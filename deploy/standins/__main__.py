"""`python -m deploy.standins`: make every base image the compose stack needs exist locally.

An image that exists (pulled, or a stand-in whose recipe hash label matches) is kept; one that
can be pulled is pulled; otherwise a stand-in is built from Debian packages: a root file system
made with debootstrap and imported, the host's CA certificates added, then one small recipe per
image (deploy/standins/<recipe>/Dockerfile), tagged with the very name the compose file uses.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from deploy.standins.images import (
    BASE_TAG,
    HERE,
    LABEL,
    ROOTFS_TAG,
    compose_images,
    digest,
    recipe_of,
)

SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
HOST_CAS = Path("/usr/local/share/ca-certificates")
SUITE = "bookworm"


def _run(*command: str, quiet: bool = False) -> subprocess.CompletedProcess[str]:
    out = subprocess.DEVNULL if quiet else None
    return subprocess.run(command, check=False, text=True, stdout=out, stderr=out)


def _label(image: str) -> str | None:
    """The recipe label of a local image; '' if it exists without one; None if it is absent."""
    found = subprocess.run(
        [
            "docker",
            "image",
            "inspect",
            "--format",
            f'{{{{index .Config.Labels "{LABEL}"}}}}',
            image,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return None
    return found.stdout.strip().replace("<no value>", "")


def _must(*command: str) -> None:
    if _run(*command).returncode != 0:
        raise SystemExit(f"deploy.standins: failed: {' '.join(command)}")


def mirror() -> str:
    """The host's Debian mirror (deb822 sources, else sources.list, else deb.debian.org)."""
    if SOURCES.is_file():
        for line in SOURCES.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb" and fields[2] == SUITE:
                return fields[1]
    return "http://deb.debian.org/debian"


def _sources_text() -> str:
    if SOURCES.is_file():
        return SOURCES.read_text()
    return f"Types: deb\nURIs: {mirror()}\nSuites: {SUITE}\nComponents: main\n"


def ensure_rootfs() -> str:
    """The imported debootstrap root file system; its label hashes how it was made."""
    recipe = digest(
        "debootstrap", "--variant=minbase", "--include=ca-certificates", SUITE, mirror()
    )
    if _label(ROOTFS_TAG) == recipe:
        return recipe
    if shutil.which("debootstrap") is None:
        raise SystemExit(
            "deploy.standins: debootstrap is not installed (apt-get install debootstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="standin-rootfs-") as work:
        rootfs = Path(work) / "rootfs"
        print(f"debootstrap {SUITE} from {mirror()} (a few minutes)", flush=True)
        _must(
            "debootstrap",
            "--variant=minbase",
            "--include=ca-certificates",
            SUITE,
            str(rootfs),
            mirror(),
        )
        shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
        shutil.rmtree(rootfs / "var/lib/apt/lists", ignore_errors=True)
        (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            ["docker", "import", "--change", f"LABEL {LABEL}={recipe}", "-", ROOTFS_TAG],
            stdin=tar.stdout,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0 or tar.returncode != 0:
            raise SystemExit("deploy.standins: docker import of the root file system failed")
    return recipe


def _build(tag: str, recipe_dir: Path, recipe: str, base: str, extra: dict[str, Path]) -> None:
    with tempfile.TemporaryDirectory(prefix="standin-") as work:
        context = Path(work) / "context"
        shutil.copytree(recipe_dir, context)
        for name, source in extra.items():
            target = context / name
            if source.is_dir():
                shutil.copytree(source, target)
            else:
                shutil.copy(source, target)
        print(f"building stand-in {tag}", flush=True)
        _must(
            "docker",
            "build",
            "-q",
            "--build-arg",
            f"BASE={base}",
            "--build-arg",
            f"ROOTFS={base}",
            "--label",
            f"{LABEL}={recipe}",
            "-t",
            tag,
            str(context),
        )


def ensure_base() -> str:
    """The root file system with the host's sources and CA certificates."""
    rootfs = ensure_rootfs()
    cas = HOST_CAS if HOST_CAS.is_dir() else Path(tempfile.mkdtemp())
    recipe = digest(rootfs, HERE / "base", _sources_text(), cas)
    if _label(BASE_TAG) != recipe:
        with tempfile.TemporaryDirectory() as work:
            sources = Path(work) / "debian.sources"
            sources.write_text(_sources_text())
            _build(
                BASE_TAG, HERE / "base", recipe, ROOTFS_TAG, {"debian.sources": sources, "ca": cas}
            )
    return recipe


def ensure_image(image: str, *, pull: bool) -> str:
    """Make one image exist; what was done, in a word."""
    recipe_dir = HERE / recipe_of(image)
    label = _label(image)
    if label == "":
        return "present"  # a real image (pulled or loaded before): never overwritten
    if label is None and pull and _run("docker", "pull", "-q", image, quiet=True).returncode == 0:
        return "pulled"
    base = ensure_base()
    recipe = digest(base, recipe_dir)
    if label == recipe:
        return "cached"
    _build(image, recipe_dir, recipe, BASE_TAG, {})
    return "built"


def main() -> None:
    """Parse the command line and make every image exist."""
    parser = argparse.ArgumentParser(
        prog="python -m deploy.standins",
        description="Make the compose file's base images exist: kept, pulled, or built locally.",
    )
    parser.add_argument("--no-pull", action="store_true", help="do not try the registry first")
    args = parser.parse_args()
    started = time.monotonic()
    for image in sorted(compose_images()):
        try:
            outcome = ensure_image(image, pull=not args.no_pull)
        except KeyError:
            print(f"deploy.standins: no stand-in recipe for {image}", file=sys.stderr)
            raise SystemExit(2) from None
        print(f"{image}: {outcome}", flush=True)
    print(f"base images ready in {time.monotonic() - started:.0f}s")


if __name__ == "__main__":
    main()
