"""Typed dependencies shared by the routes (async: a plain attribute read needs no trip to the thread pool)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from gis_platform.catalog import Catalog
from gis_platform.parcel_fields import ParcelFields
from gis_platform.rules import RuleSet
from gis_platform.sandbox import SandboxPool, shared_pool
from gis_platform.settings import Settings


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_catalog(request: Request) -> Catalog:
    return request.app.state.catalog


async def get_rules(request: Request) -> RuleSet:
    return request.app.state.rules


async def get_parcel_fields(request: Request) -> ParcelFields:
    return request.app.state.parcel_fields


async def get_sandbox(request: Request) -> SandboxPool:
    """This server process's sandbox pool (started by the lifespan; on first use where no lifespan ran)."""
    pool: SandboxPool | None = getattr(request.app.state, "sandbox", None)
    return pool if pool is not None and not pool.closed else shared_pool(request.app.state.settings)


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
CatalogDep = Annotated[Catalog, Depends(get_catalog)]
RulesDep = Annotated[RuleSet, Depends(get_rules)]
ParcelFieldsDep = Annotated[ParcelFields, Depends(get_parcel_fields)]
SandboxDep = Annotated[SandboxPool, Depends(get_sandbox)]
