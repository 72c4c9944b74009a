"""Request bodies of the HTTP API (responses are the core's JSON documents)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

EXAMPLE_PARCEL: dict[str, Any] = {
    "type": "Polygon",
    "coordinates": [[[114.80, 34.80], [114.803, 34.80], [114.803, 34.802], [114.80, 34.802], [114.80, 34.80]]],
}


class CheckBody(BaseModel):
    """A parcel to check against the red lines.

    Every overlay runs in the county's survey plane (the CGCS2000 Gauss-Krüger zone the catalogue names,
    ``survey_plane`` in ``GET /api/v1/map-config``): a parcel sent in EPSG:4490 (or another GK zone) is projected
    into it vertex by vertex before the overlay; a parcel sent in that zone is overlaid exactly as sent. Areas are
    then measured on the CGCS2000 ellipsoid (``area_model: ellipsoidal``) or in the plane (``planar``).
    """

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "geometry": EXAMPLE_PARCEL,
                    "crs": "EPSG:4490",
                    "land_use": "0701",
                    "project_name": "城关镇安置小区",
                    "project_number": "2026-YS-0001",
                }
            ]
        },
    )

    geometry: dict[str, Any] = Field(description="GeoJSON Polygon/MultiPolygon, Feature or FeatureCollection")
    crs: str = Field(
        default="EPSG:4490",
        description="CRS of the coordinates: EPSG:4490 or a CGCS2000 GK code (EPSG:4513–4554). The parcel is projected"
        " vertex by vertex into the county's survey plane before the overlay (unchanged if already in it).",
    )
    land_use: str | None = Field(default=None, description="proposed 用地用海 code, e.g. 0701", max_length=12)
    layers: list[str] | None = Field(default=None, description="layer codes to check (default: all check layers)")
    buffer_m: float = Field(
        default=0.0, ge=0, le=5000, description="grow the parcel by this many metres (a buffer in the survey plane)"
    )
    area_model: Literal["ellipsoidal", "planar"] = Field(
        default="ellipsoidal",
        description="ellipsoidal: the survey-plane overlay measured on the CGCS2000 ellipsoid (geodesic edges between"
        " the result's vertices); planar: Gauss-Krüger area in the survey plane",
    )
    project_name: str | None = Field(default=None, max_length=500)
    project_number: str | None = Field(default=None, max_length=200)

MAX_OFFSET = 2**31 - 1
"""The largest ``offset`` of a paged list (PostgreSQL's OFFSET is a bigint; beyond this nothing is there anyway)."""


def _to_utc(value: dt.datetime) -> dt.datetime:
    """A zone-aware time in UTC (PostgreSQL refuses offsets past ±15:59, which ISO 8601 and Python allow)."""
    if value.tzinfo is None:
        return value
    try:
        return value.astimezone(dt.UTC)
    except OverflowError as exc:
        raise ValueError(f"{value.isoformat()} is outside the supported range of dates") from exc


UtcDateTime = Annotated[dt.datetime, AfterValidator(_to_utc)]
"""A date-time parameter, zone-aware ones converted to UTC before they reach the database."""
