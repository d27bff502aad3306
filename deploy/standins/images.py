"""Which stand-in recipe serves which image name of the compose file and the Dockerfile."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
LABEL = "org.megapack.standin.recipe"
APP_IMAGE = "megapack-backend:local"  # built by compose itself
ROOTFS_TAG = "megapack-standin/rootfs:bookworm"
BASE_TAG = "megapack-standin/base:bookworm"
# image repository (as compose names it) -> recipe folder
RECIPES = {
    "python": "python",
    "rabbitmq": "rabbitmq",
    "nginx": "nginx",
    "timescale/timescaledb": "postgres",
}


def compose_images(compose: Path = ROOT / "docker-compose.yml") -> set[str]:
    """Every base image the stack runs or builds from (not the app image it builds)."""
    # the file's own `image:` lines (stdlib only: this runs before any venv exists)
    images = set(re.findall(r"^ {4}image: (\S+)$", compose.read_text(), re.M))
    images.discard(APP_IMAGE)
    dockerfile = (ROOT / "Dockerfile").read_text()
    images |= set(re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.M))
    return images


def recipe_of(image: str) -> str:
    """The recipe folder for an image name; KeyError if there is none."""
    repository = image.rsplit(":", 1)[0]
    return RECIPES[repository]


def digest(*parts: bytes | str | Path) -> str:
    """A short content hash of files (their names and bytes) and strings."""
    hashed = hashlib.sha256()
    for part in parts:
        if isinstance(part, Path):
            files = sorted(p for p in part.rglob("*") if p.is_file()) if part.is_dir() else [part]
            for file in files:
                hashed.update(file.name.encode() + b"\0" + file.read_bytes() + b"\0")
        else:
            hashed.update(part.encode() if isinstance(part, str) else part)
            hashed.update(b"\0")
    return hashed.hexdigest()[:16]
