"""The alert endpoints: list with filters, show with history, ack, shelve, unshelve, assign."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from common.keys import ApiKey
from monitoring_service import alert_handlers as handlers
from monitoring_service.api_common import MAX_PAGE, UNIT_ID, Pool, errors, operator_key
from monitoring_service.rules import RULE_NAMES, Severity
from monitoring_service.schemas import (
    AlertDetail,
    AlertPage,
    AlertPublic,
    AssignRequest,
    ShelveRequest,
)
from monitoring_service.settings import MonitoringSettings

T = TypeVar("T")
AlertId = Annotated[int, Path(ge=1, le=2**62)]
StateQuery = Literal[
    "active", "active_unacknowledged", "active_acknowledged", "cleared_unacknowledged", "cleared"
]
RULE = f"^({'|'.join(RULE_NAMES)})$"


async def _answer(call: Callable[[], Awaitable[T]]) -> T:
    try:
        return await call()
    except handlers.NotFound as error:
        raise HTTPException(404, str(error)) from None
    except handlers.Conflict as error:
        raise HTTPException(409, str(error)) from None


def alerts_router(settings: MonitoringSettings) -> APIRouter:
    """The alert endpoints behind an operator key."""
    Operator = Annotated[ApiKey, Depends(operator_key(settings))]
    router = APIRouter(tags=["alerts"])

    @router.get("/alerts", response_model=AlertPage)
    async def list_alerts(
        _: Operator,
        pool: Pool,
        state: StateQuery | None = None,
        severity: Severity | None = None,
        site: Annotated[str | None, Query(pattern=UNIT_ID)] = None,
        unit_id: Annotated[str | None, Query(pattern=UNIT_ID)] = None,
        rule: Annotated[str | None, Query(pattern=RULE)] = None,
        shelved: bool | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
        cursor: Annotated[str | None, Query(pattern=r"^[0-9]{1,18}$")] = None,
    ) -> AlertPage:
        """Alerts newest first. `state=active` is the alarm list: active or not yet
        acknowledged, shelved ones hidden unless `shelved=true`."""
        where = handlers.list_filter(
            state=state, severity=severity, site_id=site, unit_id=unit_id, rule=rule,
            shelved=shelved, cursor=int(cursor) if cursor else None,
        )  # fmt: skip
        return await handlers.list_alerts(pool=pool, where=where, limit=limit)

    @router.get("/alerts/{alert_id}", response_model=AlertDetail, responses=errors(404))
    async def get_alert(alert_id: AlertId, _: Operator, pool: Pool) -> AlertDetail:
        """One alert with its history of events."""
        return await _answer(lambda: handlers.get_alert(pool=pool, alert_id=alert_id))

    @router.post("/alerts/{alert_id}/ack", response_model=AlertPublic, responses=errors(404))
    async def acknowledge(alert_id: AlertId, key: Operator, pool: Pool) -> AlertPublic:
        """Acknowledge an alert, active or cleared (twice is harmless)."""
        return await _answer(
            lambda: handlers.acknowledge(pool=pool, alert_id=alert_id, by=key.name)
        )

    @router.post(
        "/alerts/{alert_id}/shelve", response_model=AlertPublic, responses=errors(400, 404, 409)
    )
    async def shelve(
        alert_id: AlertId, body: ShelveRequest, key: Operator, pool: Pool
    ) -> AlertPublic:
        """Shelve for `for_s` seconds: hidden from the active list and not notified."""
        return await _answer(
            lambda: handlers.shelve(
                pool=pool, alert_id=alert_id, by=key.name, for_s=body.for_s, reason=body.reason
            )
        )

    @router.post("/alerts/{alert_id}/unshelve", response_model=AlertPublic, responses=errors(404))
    async def unshelve(alert_id: AlertId, key: Operator, pool: Pool) -> AlertPublic:
        """End a shelf before it expires."""
        return await _answer(lambda: handlers.unshelve(pool=pool, alert_id=alert_id, by=key.name))

    @router.post(
        "/alerts/{alert_id}/assign", response_model=AlertPublic, responses=errors(400, 404)
    )
    async def assign(
        alert_id: AlertId, body: AssignRequest, key: Operator, pool: Pool
    ) -> AlertPublic:
        """Hand the alert to someone (`{"to": null}`: to nobody)."""
        return await _answer(
            lambda: handlers.assign(pool=pool, alert_id=alert_id, by=key.name, to=body.to)
        )

    return router
