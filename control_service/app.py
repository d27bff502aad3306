"""The control service's wiring: pool, broker, answer consumer, sweeper and routes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from common.broker import Broker
from common.db import TRANSIENT_DB_ERRORS, create_pool
from common.docs import install_offline_docs
from common.http import health_router, install_error_handlers
from common.topology import Names, declare_commands
from control_service import handlers
from control_service.api import commands_router
from control_service.delivery import AnswerConsumer, BrokerPublisher, every
from control_service.group_api import groups_router
from control_service.settings import ControlSettings
from db.commands import CommandRepository

log = structlog.get_logger("control_service")


def create_app(settings: ControlSettings) -> FastAPI:
    """Build the control service; connections open in its lifespan."""
    broker = Broker(
        settings.amqp_url,
        Names(settings.amqp_prefix),
        declare=declare_commands,
        publish_timeout_s=settings.publish_timeout_s,
    )
    publisher = BrokerPublisher(broker)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # min_size=0: the service starts (not ready) while the database is still down.
        pool = await create_pool(settings.database_url, min_size=0, max_size=10)
        store = app.state.store = CommandRepository(pool)

        async def apply(answer: handlers.Answer) -> bool:
            return await handlers.apply_answer(store=store, answer=answer)

        async def sweep() -> None:
            await handlers.release_scheduled(store=store, publisher=publisher)
            if await consumer.caught_up():
                await handlers.sweep(
                    store=store,
                    grace_s=settings.command_expiry_grace_s,
                    completion_timeout_s=settings.command_completion_timeout_s,
                    effect_timeout_s=settings.effect_timeout_s,
                    default_rated_power_kw=settings.megapack_rated_power_kw,
                )
            await handlers.republish_pending(
                store=store, publisher=publisher, idle_s=settings.command_republish_after_s
            )

        await broker.start()
        consumer = app.state.consumer = AnswerConsumer(
            broker,
            apply=apply,
            prefetch=settings.ack_prefetch,
            retry_for_s=settings.ack_retry_for_s,
        )
        tasks = [
            asyncio.create_task(consumer.run(), name="answers"),
            asyncio.create_task(every(settings.command_sweep_interval_s, sweep, name="sweep")),
        ]
        log.info("control_service_started", prefix=settings.amqp_prefix)
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await broker.close()
        await pool.close()
        log.info("control_service_stopped")

    async def ready() -> dict[str, bool]:
        return {
            "broker": broker.ready,
            "database": await app.state.store.reachable(),
            "answers": app.state.consumer.consuming,
        }

    app = FastAPI(
        title="Megapack control service",
        version="1.0.0",
        description="Operator commands to Megapacks and EVs, delivered through RabbitMQ and "
        "tracked until the unit completes, rejects or fails them, or they expire.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_offline_docs(app)
    app.include_router(health_router(ready))
    app.include_router(commands_router(settings, publisher))
    app.include_router(groups_router(settings, publisher))
    # The web console (served by the monitoring service) calls this API from the browser.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=list(settings.console_origins),
        allow_methods=["GET", "POST"],
        allow_headers=["X-API-Key", "Content-Type", "Idempotency-Key"],
        max_age=600,
    )
    install_error_handlers(app, transient=TRANSIENT_DB_ERRORS)
    return app
