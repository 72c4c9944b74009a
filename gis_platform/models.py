"""Database schema (SQLAlchemy 2 + GeoAlchemy2).

- ``layer``: one row per catalogue layer, pointing at its current version.
- ``layer_version``: every import of a layer — source file and checksum, who and when, feature
  count, extent, area total, status and the import report. A check records the version ids it used,
  so a past result can always say which data it was computed on.
- ``feature``: the features of every version, **list-partitioned by version**. An import loads a
  fresh table, indexes it and attaches it as a partition inside one transaction, so a version is
  either complete and current or not there at all.

Geometries are stored in EPSG:4490 (CGCS2000 lon/lat). ``feature.area_m2`` is the ellipsoidal
area on the CGCS2000 ellipsoid (``ST_Area(geom::geography)``), computed by the database. Each feature is
also kept in the county's survey plane (``feature.geom_plane``, a CGCS2000 Gauss-Krüger zone), where every
overlay runs (:mod:`gis_platform.survey_plane`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    Double,
    ForeignKey,
    Integer,
    MetaData,
    Sequence,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

STORAGE_SRID = 4490

VERSION_STATUSES = ("current", "superseded")

FEATURE_AREA_SQL = "CASE WHEN ST_Dimension(geom) = 2 THEN ST_Area(geom::geography) END"


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
        }
    )


class Layer(Base):
    __tablename__ = "layer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    layer_group: Mapped[str] = mapped_column(String(20))
    geometry_type: Mapped[str] = mapped_column(String(20))
    current_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("layer_version.id", use_alter=True, name="fk_layer_current_version"), nullable=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LayerVersion(Base):
    __tablename__ = "layer_version"
    __table_args__ = (UniqueConstraint("layer_id", "version_no"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("layer.id"), index=True)
    version_no: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    source_name: Mapped[str] = mapped_column(Text)
    source_format: Mapped[str] = mapped_column(String(40))
    source_checksum: Mapped[str] = mapped_column(String(64))
    source_crs: Mapped[str] = mapped_column(String(40))
    imported_by: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    feature_count: Mapped[int] = mapped_column(Integer)
    area_total_m2: Mapped[float | None] = mapped_column(Double, nullable=True)
    extent: Mapped[Any] = mapped_column(Geometry("POLYGON", srid=STORAGE_SRID, spatial_index=False), nullable=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    plane_srid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    overlap_fids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer), nullable=True)
    """Source numbers of the features that may overlap another ([]: none; NULL: not known): see ingest.coverage."""
    """The survey plane ``feature.geom_plane`` holds this version in (the catalogue's ``survey_plane``)."""


feature_id_seq = Sequence("feature_id_seq", metadata=Base.metadata)


class Feature(Base):
    __tablename__ = "feature"
    __table_args__ = {"postgresql_partition_by": "LIST (version_id)"}  # noqa: RUF012

    version_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    id: Mapped[int] = mapped_column(
        BigInteger, feature_id_seq, primary_key=True, server_default=feature_id_seq.next_value()
    )
    source_fid: Mapped[int] = mapped_column(Integer)
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB)
    geom: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=STORAGE_SRID, spatial_index=False))
    area_m2: Mapped[float | None] = mapped_column(Double, Computed(FEATURE_AREA_SQL, persisted=True), nullable=True)
    geom_plane: Mapped[Any] = mapped_column(Geometry("GEOMETRY", srid=-1, spatial_index=False), nullable=True)
    """The same feature in the county's survey plane (SRID ``layer_version.plane_srid``): every overlay reads it."""
