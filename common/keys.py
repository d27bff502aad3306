"""API keys: parsing `name:secret[:site=ID|:fleet=ID]` lists and constant-time lookup."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

from common.readings import ID_PATTERN

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_ID = re.compile(ID_PATTERN)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key: its public name, a digest of its secret, and an optional site/fleet scope."""

    name: str
    digest: bytes
    scope: tuple[str, str] | None = None  # ("site", "SITE-01") or ("fleet", "F1")

    def __repr__(self) -> str:  # never show the digest in logs or tracebacks
        return f"ApiKey(name={self.name!r}, scope={self.scope!r})"


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).digest()


def parse_api_keys(spec: str) -> tuple[ApiKey, ...]:
    """Parse a comma-separated key list; a ValueError names the bad entry, never its secret."""
    keys: list[ApiKey] = []
    for index, raw in enumerate(part.strip() for part in spec.split(",")):
        if not raw:
            continue
        parts = raw.split(":")
        if len(parts) not in (2, 3) or not _NAME.match(parts[0]) or len(parts[1]) < 8:
            raise ValueError(
                f"entry {index + 1} must be name:secret[:site=ID|:fleet=ID] "
                "with a secret of at least 8 characters"
            )
        scope = None
        if len(parts) == 3:
            kind, _, value = parts[2].partition("=")
            if kind not in ("site", "fleet") or not _ID.match(value):
                raise ValueError(
                    f"entry {index + 1} ({parts[0]}): scope must be site=ID or fleet=ID"
                )
            scope = (kind, value)
        if any(key.name == parts[0] for key in keys):
            raise ValueError(f"entry {index + 1}: key name {parts[0]!r} is used twice")
        keys.append(ApiKey(name=parts[0], digest=_digest(parts[1]), scope=scope))
    if not keys:
        raise ValueError("at least one key is required")
    return tuple(keys)


def find_key(keys: tuple[ApiKey, ...], presented: str | None) -> ApiKey | None:
    """Return the key whose secret was presented, comparing against every key in constant time."""
    if not presented:
        return None
    digest = _digest(presented)
    found: ApiKey | None = None
    for key in keys:
        if hmac.compare_digest(key.digest, digest):
            found = key
    return found
