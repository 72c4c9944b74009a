"""The usual parcel fields and the 三调 → 用地用海 crosswalk (layers/parcel_fields.yaml, land_use_crosswalk.yaml):
validated on load, and how one value of a file is read. No database."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gis_platform.catalog import DEFAULT_LAYERS_DIR, Catalog, load_catalog
from gis_platform.errors import CatalogError
from gis_platform.parcel_fields import (
    CROSSWALK_FILE,
    PARCEL_FIELDS_FILE,
    ParcelFields,
    UseProblem,
    UseReading,
    clear_parcel_fields_cache,
    code_text,
    load_parcel_fields,
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def fields(catalog: Catalog) -> ParcelFields:
    return load_parcel_fields(catalog)


def test_shipped_files_load_and_cover_every_land_survey_code(catalog: Catalog, fields: ParcelFields) -> None:
    assert fields.use_fields[0].name == "DKYT" and fields.label_fields[0].name == "DKMC"
    assert fields.use_field("dlbm") is not None and fields.use_field("DLBM").classification == "land_survey"  # type: ignore[union-attr]
    for survey_class in catalog.land_survey_classes:  # no 三调 code falls through the crosswalk unnoticed
        assert fields.read_use(survey_class.dlbm, "land_survey") is not None, survey_class.dlbm
    assert len(fields.fingerprint) == 64
    assert load_parcel_fields(catalog) is fields
    clear_parcel_fields_cache()
    assert load_parcel_fields(catalog).fingerprint == fields.fingerprint


@pytest.mark.parametrize(
    ("value", "classification", "expected"),
    [
        ("1001", "land_use", ("1001", "code")),
        ("070101", "land_use", ("070101", "code")),
        (701, "land_use", ("0701", "code")),  # a numeric DBF field lost the zero
        (np.int64(1202), "land_use", ("1202", "code")),
        ("０７０１", "land_use", ("0701", "code")),  # full-width digits
        ("  0901 商业用地 ", "land_use", ("0901", "code")),
        ("0901商业用地", "land_use", ("0901", "code")),
        ("工业用地", "land_use", ("1001", "name")),
        ("住宅用地", "land_use", ("07", "name")),  # a listed other name
        ("0601", "land_survey", ("1001", "crosswalk")),  # 三调 工业用地
        ("1001", "land_survey", ("1201", "crosswalk")),  # 三调 铁路用地, not 用地用海 工业用地
        ("0702", "land_survey", ("0703", "crosswalk")),  # 三调 农村宅基地
        ("05h1", "land_survey", ("09", "crosswalk")),
        ("铁路用地", "land_survey", ("1201", "crosswalk")),  # a 三调 name
        ("1202", "land_survey", ("06", "crosswalk")),  # 设施农用地
    ],
)
def test_values_that_read(fields: ParcelFields, value: Any, classification: Any, expected: tuple[str, str]) -> None:
    reading = fields.read_use(value, classification)
    assert isinstance(reading, UseReading)
    assert (reading.code, reading.read_as) == expected


@pytest.mark.parametrize(
    ("value", "classification", "reason", "candidates", "hint"),
    [
        ("建设用地", "land_use", "too_general", (), None),
        ("农用地", "land_survey", "too_general", (), None),
        ("9999", "land_use", "unknown_code", (), None),
        ("701", "land_use", "unknown_code", (), None),  # as text, three digits are not a code
        ("05H1", "land_use", "unknown_code", (), "land_survey"),
        ("城镇村道路用地", "land_use", "unknown_name", (), "land_survey"),
        ("0901", "land_survey", "unknown_code", (), "land_use"),  # no 三调 0901: it is a 用地用海 code
        ("0701 工业用地", "land_use", "name_mismatch", ("0701",), None),
        ("1004", "land_survey", "ambiguous", ("1207", "060101"), None),
        ("1107", "land_survey", "ambiguous", ("1705", "1311"), None),  # 沟渠 or 干渠
        ("工矿仓储用地", "land_use", "ambiguous", ("10", "11"), None),
    ],
)
def test_values_that_do_not_read(
    fields: ParcelFields, value: str, classification: Any, reason: str, candidates: tuple[str, ...], hint: Any
) -> None:
    problem = fields.read_use(value, classification)
    assert isinstance(problem, UseProblem)
    assert (problem.reason, problem.candidates, problem.hint) == (reason, candidates, hint)


@pytest.mark.parametrize("value", [None, "", "  ", float("nan")])
def test_empty_values_read_as_nothing(fields: ParcelFields, value: Any) -> None:
    assert fields.read_use(value, "land_use") is None


def test_code_text() -> None:
    values = (7, 701, 1001.0, " 0701 ", "０１", True)
    assert [code_text(v) for v in values] == ["07", "0701", "1001", "0701", "01", "True"]


# --------------------------------------------------------------------------------------------------
# Broken files
# --------------------------------------------------------------------------------------------------


def _copy_layers(tmp_path: Path) -> Path:
    target = tmp_path / "layers"
    shutil.copytree(DEFAULT_LAYERS_DIR, target)
    return target


def _edit(folder: Path, name: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = folder / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _survey(data: dict[str, Any], dlbm: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in data["land_survey"] if e["dlbm"] == dlbm)
    return found


BROKEN: list[tuple[str, str, Callable[[dict[str, Any]], None], str, str]] = [
    (
        "target not a 用地用海 code",
        CROSSWALK_FILE,
        lambda d: _survey(d, "0601").update(land_use="1099"),
        "三调 DLBM '0601'",
        "'1099' is not a 用地用海 code",
    ),
    (
        "a 三调 code left out",
        CROSSWALK_FILE,
        lambda d: d["land_survey"].remove(_survey(d, "1004")),
        "三调 DLBM '1004'",
        "1004 城镇村道路用地 has no entry",
    ),
    (
        "both a class and candidates",
        CROSSWALK_FILE,
        lambda d: _survey(d, "1004").update(land_use="1207"),
        "三调 DLBM '1004'",
        "exactly one of land_use",
    ),
    (
        "a single candidate",
        CROSSWALK_FILE,
        lambda d: _survey(d, "1107").update(ambiguous=["1705"]),
        "三调 DLBM '1107'",
        "ambiguous",
    ),
    (
        "not a 三调 code",
        CROSSWALK_FILE,
        lambda d: d["land_survey"].append({"dlbm": "0999", "land_use": "0101"}),
        "三调 DLBM '0999'",
        "not a 三调 code",
    ),
    (
        "an other name that is a class name",
        CROSSWALK_FILE,
        lambda d: d["names"].append({"name": "工业用地", "land_use": "1002"}),
        "name '工业用地'",
        "already a class name",
    ),
    (
        "an unquoted code",
        CROSSWALK_FILE,
        lambda d: _survey(d, "0101").update(land_use=101),
        "三调 DLBM '0101'",
        "must be a quoted string",
    ),
    (
        "a field listed twice",
        PARCEL_FIELDS_FILE,
        lambda d: d["label_fields"].append({"name": "dkyt", "label_zh": "x", "label_en": "x"}),
        "label field 'dkyt'",
        "already listed in use_fields",
    ),
    (
        "an unknown classification",
        PARCEL_FIELDS_FILE,
        lambda d: d["use_fields"][0].update(classification="gb50137"),
        "use field 'DKYT'",
        "classification",
    ),
]


@pytest.mark.parametrize(
    ("name", "change", "entry", "problem"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_files_name_file_entry_and_problem(
    tmp_path: Path, name: str, change: Callable[[dict[str, Any]], None], entry: str, problem: str
) -> None:
    folder = _copy_layers(tmp_path)
    _edit(folder, name, change)
    with pytest.raises(CatalogError) as info:
        load_parcel_fields(load_catalog(folder))
    message = str(info.value)
    assert name in message and entry in message and problem in message


def test_the_api_refuses_to_start_with_a_broken_crosswalk(tmp_path: Path) -> None:
    from api.app import create_app
    from gis_platform.settings import Settings

    folder = _copy_layers(tmp_path)
    (folder / CROSSWALK_FILE).unlink()
    with pytest.raises(CatalogError, match=r"land_use_crosswalk\.yaml"):
        create_app(Settings(layers_dir=folder, database_url="postgresql://unused/none"))
