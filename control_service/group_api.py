"""Group command endpoints: one command per selected unit, and the group's progress."""

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Header, HTTPException
from fastapi.responses import JSONResponse

from common.http import operator_key_dependency, reject_unknown_query
from common.keys import ApiKey
from control_service import metrics
from control_service.api import IDEMPOTENCY_KEY, Store, defaults, errors
from control_service.delivering import CommandPublisher
from control_service.group_schemas import GroupAccepted, GroupCreate, GroupPublic
from control_service.groups import GroupRequest, deliver_group, submit_group
from control_service.rules import Refused
from control_service.settings import ControlSettings


def groups_router(settings: ControlSettings, publisher: CommandPublisher) -> APIRouter:
    """The group endpoints, bound to their collaborators."""
    router = APIRouter(
        prefix="/v1", tags=["command groups"], dependencies=[Depends(reject_unknown_query)]
    )
    operator_key = operator_key_dependency(
        operators=settings.operator_api_keys,
        devices=settings.device_api_keys,
        refused_reason="device keys may not send or read commands; use an operator key",
    )
    Operator = Annotated[ApiKey, Depends(operator_key)]

    @router.post(
        "/command-groups",
        status_code=202,
        response_model=GroupAccepted,
        responses={
            202: {
                "description": "one command per selected unit (rejected ones with a reason), "
                "stored; they are published right after this answer"
            },
            **errors(400, 401, 403, 404, 409, 422, 503),
        },
        summary="Send one command to every unit of a site, a fleet or a list",
    )
    async def post_group(
        body: GroupCreate,
        key: Operator,
        store: Store,
        background: BackgroundTasks,
        idempotency_key: Annotated[
            str | None,
            Header(
                pattern=IDEMPOTENCY_KEY,
                description="the same key from the same operator returns the same group",
            ),
        ] = None,
    ) -> JSONResponse:
        try:
            group, created, pending = await submit_group(
                store=store,
                publisher=publisher,
                request=GroupRequest(
                    selector=body.selector.as_dict(),
                    type_name=body.type,
                    params=body.params,
                    ttl_s=body.ttl_s or settings.command_default_ttl_s,
                    requested_by=key.name,
                    idempotency_key=idempotency_key,
                    not_before=body.not_before,
                ),
                defaults=defaults(settings),
            )
        except Refused as refused:
            metrics.COMMANDS.labels(f"group:{body.type}", str(refused.status)).inc()
            headers = {"Retry-After": "2"} if refused.status == 503 else None
            raise HTTPException(refused.status, refused.detail, headers=headers) from None
        metrics.COMMANDS.labels(f"group:{body.type}", "202").inc()
        # Published after the answer: a 10,000-unit group must not hold the request open.
        background.add_task(deliver_group, store=store, publisher=publisher, commands=pending)
        accepted = GroupAccepted(group_id=group.group_id, commands=group.command_count)
        return JSONResponse(
            accepted.model_dump(mode="json"),
            status_code=202,
            headers={"Idempotent-Replayed": "false" if created else "true"},
        )

    @router.get(
        "/command-groups/{group_id}",
        response_model=GroupPublic,
        responses=errors(401, 403, 404, 422, 503),
        summary="A group's counts by status and each unit's command",
    )
    async def get_group(group_id: uuid.UUID, _: Operator, store: Store) -> GroupPublic:
        found = await store.get_group(group_id)
        if found is None:
            raise HTTPException(404, f"unknown command group {group_id}")
        return GroupPublic.of(found)

    return router
