"""`AMQP_URL` as a list of brokers: parsing, validation and redaction (no I/O).

Several comma-separated URLs name the nodes of one cluster; a client connects to the first
that answers and moves on to the next when its node is lost (common.broker).
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

# Seconds between heartbeats when a URL does not choose (aiormq's default is 60): a node that
# stops answering without closing its sockets (paused, cut off) is given up after ~3 of them.
DEFAULT_HEARTBEAT_S = 5
_SCHEMES = ("amqp", "amqps")


def split_amqp_urls(value: str) -> tuple[str, ...]:
    """The URLs of a comma-separated list, validated (a ValueError names the bad one)."""
    urls = tuple(part.strip() for part in value.split(","))
    if not any(urls):
        raise ValueError("must name at least one broker (amqp://user:password@host:5672/)")
    for position, url in enumerate(urls, start=1):
        problem = _problem(url)
        if problem:
            where = f"URL {position} of {len(urls)}" if len(urls) > 1 else "the URL"
            raise ValueError(f"{where} ({redact(url) or 'empty'}) {problem}")
    return urls


def _problem(url: str) -> str | None:
    if not url:
        return "is empty (a stray comma?)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return f"cannot be parsed: {error}"
    if parts.scheme not in _SCHEMES:
        return "must start with amqp:// or amqps://"
    if not parts.hostname:
        return "names no host"
    if port == 0:
        return "has port 0"
    return None


def with_heartbeat(url: str, heartbeat_s: int = DEFAULT_HEARTBEAT_S) -> str:
    """The URL with a heartbeat interval, unless it chooses one itself (`?heartbeat=`)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key == "heartbeat" for key, _ in query):
        return url
    return parts._replace(query=urlencode([*query, ("heartbeat", str(heartbeat_s))])).geturl()


def redact(url: str) -> str:
    """The URL without its password, for logs and error lines."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.netloc.rsplit("@", 1)[1]
    except (ValueError, IndexError):
        return "<unparseable URL>"
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def node_label(url: str) -> str:
    """`host:port` of a broker URL (what the logs name a node by)."""
    parts = urlsplit(url)
    port = parts.port or (5671 if parts.scheme == "amqps" else 5672)
    return f"{parts.hostname}:{port}"
