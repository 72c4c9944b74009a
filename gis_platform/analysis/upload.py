"""Parcels from an uploaded file (zipped Shapefile, GeoJSON, GeoPackage, boundary TXT, DXF): one per feature.

:func:`read_parcel_file` reads and validates every parcel; :func:`inspect_parcel_file` says what the file offers
before a check (its fields with sample values, the use and name fields detected or chosen, what each parcel's
use resolves to); :func:`parcel_uses_from_file` gives the parcels with their uses for checking, through the one
resolver of :mod:`.parcel_use`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely
from sqlalchemy import Engine

from ..audit import Actor
from ..catalog import Catalog
from ..checks import CheckRequest, run_check
from ..errors import ParcelError, UnknownLandUseError
from ..ingest.boundary_txt import DERIVED_COLUMNS
from ..ingest.limits import ReadLimits
from ..ingest.pipeline import opened_dataset, read_source, resolve_source_crs
from ..parcel_fields import CLASSIFICATION_NAMES, ParcelFields, code_text
from ..rules import RuleSet
from ..settings import Settings
from ..survey_plane import SurveyPlane
from .parcel import Parcel, prepare_parcel
from .parcel_use import (
    MAX_SAMPLES,
    FieldChoice,
    ParcelUse,
    SettledFields,
    parcel_label,
    parcel_use,
    problem_entry,
    resolve_uses,
    settle_fields,
    use_source,
)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


@dataclass
class ParcelFile:
    """The parcels of one file with what the file says about itself."""

    name: str
    format: str
    encoding: str | None
    source_crs: str
    columns: list[str]
    """The file's attribute fields, in file order (for a TXT: the parcel line's fields)."""
    parcels: list[Parcel] = field(default_factory=list)


def upload_limits(settings: Settings) -> ReadLimits:
    """What one uploaded parcel file may hold (a check or an inspection): counted while it is read."""
    return ReadLimits.for_parcels(settings, hint="; use the batch check")


def read_parcel_file(path: Path, settings: Settings, plane: SurveyPlane, *, crs: str | int | None = None) -> ParcelFile:
    """Every polygon feature of the file as a validated parcel, in EPSG:4490 and the survey plane, with the
    file's fields; the file is read within :func:`upload_limits` (the HTTP routes call this in the sandbox,
    :mod:`gis_platform.sandbox`)."""
    with opened_dataset(path, settings) as dataset:
        source = read_source(dataset, source_name=path.name, limits=upload_limits(settings))
        resolved = resolve_source_crs(source, crs)
        geometries = source.geometries
        present = [i for i, g in enumerate(geometries) if g is not None and not shapely.is_empty(g)]
        if not present:
            raise ParcelError(f"{path.name}: the file holds no parcel geometry", parcels=0)
        if len(present) > settings.max_parcels_per_request:
            raise ParcelError(
                f"{path.name}: {len(present)} parcels, more than the limit of {settings.max_parcels_per_request};"
                " use the batch check",
                parcels=len(present),
                limit=settings.max_parcels_per_request,
            )
        records = (
            source.attributes.to_dict(orient="records") if len(source.attributes.columns) else [{}] * len(geometries)
        )
        parcels = [
            prepare_parcel(
                geometries[i],
                resolved.crs,
                plane=plane,
                max_vertices=settings.max_parcel_vertices,
                max_parts=settings.max_parcel_parts,
                index=i,
                properties={str(k): _clean(v) for k, v in records[i].items()},
                allow_prefix_inference=True,
            )
            for i in present
        ]
    columns = [str(c) for c in source.attributes.columns if str(c) not in DERIVED_COLUMNS]
    return ParcelFile(
        name=path.name,
        format=source.format,
        encoding=source.encoding,
        source_crs=f"EPSG:{resolved.epsg}" if resolved.epsg else resolved.crs.name,
        columns=columns,
        parcels=parcels,
    )


def parcels_from_file(
    path: Path, settings: Settings, plane: SurveyPlane, *, crs: str | int | None = None
) -> list[Parcel]:
    """Every polygon feature of the file as a validated parcel, in EPSG:4490 and the plane (no use or name read)."""
    return read_parcel_file(path, settings, plane, crs=crs).parcels


def settle_file_fields(parcel_file: ParcelFile, choice: FieldChoice, fields: ParcelFields) -> SettledFields:
    return settle_fields(parcel_file.columns, [p.properties for p in parcel_file.parcels], choice, fields)


def parcel_uses_from_file(
    parcel_file: ParcelFile, choice: FieldChoice, fields: ParcelFields
) -> tuple[SettledFields, list[tuple[Parcel, ParcelUse]]]:
    """The parcels labelled and paired with their uses; a file with a use that cannot be read is refused whole
    (:class:`~gis_platform.errors.LandUseValueError`), so nothing of it is checked or stored."""
    settled = settle_file_fields(parcel_file, choice, fields)
    uses = resolve_uses(parcel_file.parcels, settled, fields)
    return settled, list(zip(parcel_file.parcels, uses, strict=True))


def check_file_parcels(
    engine: Engine,
    catalog: Catalog,
    rules: RuleSet,
    settings: Settings,
    parcel_file: ParcelFile,
    choice: FieldChoice,
    fields: ParcelFields,
    *,
    source: str,
    created_by: str,
    actor: Actor | None = None,
    buffer_m: float = 0.0,
    project_name: str | None = None,
    project_number: str | None = None,
) -> list[dict[str, Any]]:
    """One stored check per parcel of the file, each with its own use and name (the upload API and the CLI).

    A use that cannot be read refuses the whole file before anything is checked or stored.
    """
    settled, parcels = parcel_uses_from_file(parcel_file, choice, fields)
    return [
        run_check(
            engine,
            catalog,
            rules,
            settings,
            CheckRequest(
                parcel=parcel,
                land_use_code=use.code,
                land_use_source=use_source(use, settled, fields),
                buffer_m=buffer_m,
                project_name=project_name,
                project_number=project_number,
                source=source,
                created_by=created_by,
                actor=actor,
            ),
        )
        for parcel, use in parcels
    ]


# --------------------------------------------------------------------------------------------------
# Inspecting a file before the check
# --------------------------------------------------------------------------------------------------


def _samples(parcels: list[Parcel], column: str) -> tuple[list[str], int]:
    seen: list[str] = []
    filled = 0
    for parcel in parcels:
        raw = parcel.properties.get(column)
        text = code_text(raw) if raw is not None else ""
        if text:
            filled += 1
            if text not in seen and len(seen) < MAX_SAMPLES:
                seen.append(text)
    return seen, filled


def _land_use_doc(code: str, fields: ParcelFields) -> dict[str, Any]:
    try:
        cls = fields.catalog.land_use(code)
    except UnknownLandUseError:  # pragma: no cover - codes come from the catalogue
        return {"code": code}
    return {"code": cls.code, "name_zh": cls.name_zh, "name_en": cls.name_en, "construction": cls.construction}


def inspect_parcel_file(parcel_file: ParcelFile, choice: FieldChoice, fields: ParcelFields) -> dict[str, Any]:
    """What a file offers for a check, and what each parcel's use and name would be with ``choice``."""
    settled = settle_file_fields(parcel_file, choice, fields)
    field_docs = []
    for column in parcel_file.columns:
        info = fields.describe(column)
        samples, filled = _samples(parcel_file.parcels, column)
        field_docs.append(
            {
                "name": column,
                "label_zh": info.label_zh,
                "label_en": info.label_en,
                "classification": info.classification,
                "samples": samples,
                "filled": filled,
            }
        )
    parcels = []
    problems = 0
    for parcel in parcel_file.parcels:
        label = parcel_label(parcel.properties, settled)
        use = parcel_use(parcel.properties, settled, fields)
        entry: dict[str, Any] = {"number": parcel.index + 1, "label": label, "value": use.value, "from": use.origin}
        if use.problem is not None:
            problems += 1
            entry["problem"] = problem_entry(parcel.index + 1, label, use, settled, fields)
            entry["land_use"] = None
        else:
            entry["problem"] = None
            entry["land_use"] = _land_use_doc(use.code, fields) if use.code else None
            if use.reading is not None:
                entry["read_as"] = use.reading.read_as
                entry["survey_code"] = use.reading.survey_code
                entry["verify"] = use.reading.verify
        parcels.append(entry)
    classification = settled.classification
    return {
        "file": parcel_file.name,
        "format": parcel_file.format,
        "encoding": parcel_file.encoding,
        "source_crs": parcel_file.source_crs,
        "count": len(parcel_file.parcels),
        "fields": field_docs,
        "use_field": {
            "chosen": settled.use_field,
            "detected": settled.detected_use_field,
            "classification": classification,
            "classification_zh": CLASSIFICATION_NAMES[classification][0] if classification else None,
            "classification_en": CLASSIFICATION_NAMES[classification][1] if classification else None,
        },
        "label_field": {"chosen": settled.label_field, "detected": settled.detected_label_field},
        "default_use": _land_use_doc(settled.default_use, fields) if settled.default_use else None,
        "parcels": parcels,
        "problems": problems,
        "without_use": sum(1 for p in parcels if p["problem"] is None and p["land_use"] is None),
        "crosswalk_fingerprint": fields.fingerprint,
    }
