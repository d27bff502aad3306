"""The webhook delivery loop with a fake transport: signatures, retries, the age limit."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import httpx

from monitoring_service.notifier import WebhookPolicy, deliver, signature

AT = datetime(2026, 1, 1, tzinfo=UTC)
BODY = json.dumps({"event_id": "e-1", "at": AT.isoformat(), "alert_id": 1}).encode()


class FakeHooks:
    """Answers per URL from a script; records every call; a clock the sleeps advance."""

    def __init__(self, script: dict[str, list[int | Exception]]) -> None:
        self.script = script
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []
        self.sleeps: list[float] = []
        self.clock = AT

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        self.calls.append((url, body, headers))
        answer = self.script[url].pop(0) if self.script[url] else 200
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock += timedelta(seconds=seconds)


def test_the_signature_is_the_hmac_sha256_of_the_body() -> None:
    expected = hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert signature("s3cret", BODY) == f"sha256={expected}"


async def test_each_url_is_retried_with_backoff_until_it_answers_2xx() -> None:
    hooks = FakeHooks({"http://a": [500, httpx.ConnectError("down"), 503], "http://b": [204]})
    policy = WebhookPolicy(urls=("http://a", "http://b"), secret="s3cret", max_age_s=3600)
    delivered = await deliver(BODY, policy=policy, post=hooks.post, sleep=hooks.sleep,
                              now=lambda: hooks.clock)  # fmt: skip
    assert delivered
    assert [url for url, _, _ in hooks.calls] == ["http://a", "http://b"] + ["http://a"] * 3
    assert hooks.sleeps == [1.0, 2.0, 4.0]
    for _, body, headers in hooks.calls:  # every attempt: the same body, signed, with its id
        assert body == BODY
        assert headers["X-Signature"] == signature("s3cret", BODY)
        assert headers["X-Event-Id"] == "e-1"


async def test_an_event_older_than_the_maximum_age_is_given_up() -> None:
    hooks = FakeHooks({"http://a": [500] * 1000})
    policy = WebhookPolicy(urls=("http://a",), secret="s3cret", max_age_s=300)
    delivered = await deliver(BODY, policy=policy, post=hooks.post, sleep=hooks.sleep,
                              now=lambda: hooks.clock)  # fmt: skip
    assert not delivered
    assert max(hooks.sleeps) == 60.0  # the backoff is capped
    assert 300 < (hooks.clock - AT).total_seconds() <= 300 + 60
