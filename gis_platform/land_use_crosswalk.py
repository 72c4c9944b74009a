"""The 三调 → 用地用海 crosswalk file (``layers/land_use_crosswalk.yaml``): its entries and their validation.

Loaded through :func:`gis_platform.parcel_fields.load_parcel_fields`, which reads the values with it; validated
against the catalogue: every 三调 code of ``land_survey_codes.yaml`` has exactly one entry, every target is a
用地用海 code, other names do not repeat a class name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from pydantic import Field as PydanticField

from gis_platform.catalog import Catalog
from gis_platform.data_files import CodeStr, FrozenModel, NonEmptyStr, Problems, entry_label, read_yaml, validate_entry
from gis_platform.errors import UnknownLandUseError

CROSSWALK_FILE: Final[str] = "land_use_crosswalk.yaml"


class SurveyEntry(FrozenModel):
    """One 三调 DLBM: the 用地用海 class it maps to, or the classes it may be (``ambiguous``, never guessed)."""

    dlbm: CodeStr
    land_use: CodeStr | None = None
    ambiguous: tuple[CodeStr, ...] | None = PydanticField(default=None, min_length=2)
    verify: bool = False
    note: NonEmptyStr | None = None


class NameEntry(FrozenModel):
    """Another name of a 用地用海 class (住宅用地 → 07), or of several (``ambiguous``)."""

    name: NonEmptyStr
    land_use: CodeStr | None = None
    ambiguous: tuple[CodeStr, ...] | None = PydanticField(default=None, min_length=2)
    verify: bool = False
    note: NonEmptyStr | None = None


class GeneralEntry(FrozenModel):
    """A name too general to be a proposed use (建设用地 …)."""

    name: NonEmptyStr
    note: NonEmptyStr | None = None


class _CrosswalkFile(FrozenModel):
    source: NonEmptyStr
    land_survey: list[Any] = PydanticField(min_length=1)
    names: list[Any] = PydanticField(default_factory=list)
    general: list[Any] = PydanticField(default_factory=list)


def _targets_problems(entry: SurveyEntry | NameEntry, catalog: Catalog) -> list[str]:
    if (entry.land_use is None) == (entry.ambiguous is None):
        return ["give exactly one of land_use (the 用地用海 class) or ambiguous (the classes it may be)"]
    problems = []
    for code in (entry.land_use,) if entry.land_use else entry.ambiguous or ():
        try:
            catalog.land_use(code)
        except UnknownLandUseError:
            problems.append(f"{code!r} is not a 用地用海 code of the catalogue")
    return problems


def load_crosswalk(
    path: Path, catalog: Catalog
) -> tuple[dict[str, SurveyEntry], dict[str, NameEntry], dict[str, GeneralEntry], bytes]:
    raw, data = read_yaml(path)
    problems = Problems(path)
    top = validate_entry(_CrosswalkFile, raw, problems, "(top level)")
    problems.raise_if_any()
    assert top is not None
    survey: dict[str, SurveyEntry] = {}
    for index, raw_entry in enumerate(top.land_survey):
        entry = entry_label("三调 DLBM", raw_entry, index, key="dlbm")
        parsed = validate_entry(SurveyEntry, raw_entry, problems, entry)
        if parsed is None:
            continue
        dlbm = parsed.dlbm.upper()
        try:
            catalog.land_survey_class(dlbm)
        except UnknownLandUseError:
            problems.add(entry, f"{dlbm!r} is not a 三调 code of the catalogue (land_survey_codes.yaml)")
            continue
        if dlbm in survey:
            problems.add(entry, f"duplicate 三调 code {dlbm!r}")
            continue
        for problem in _targets_problems(parsed, catalog):
            problems.add(entry, problem)
        survey[dlbm] = parsed
    for cls in catalog.land_survey_classes:
        if cls.dlbm not in survey:
            problems.add(
                f"三调 DLBM {cls.dlbm!r}",
                f"{cls.dlbm} {cls.dlmc} has no entry: map it (land_use) or list its classes (ambiguous)",
            )
    class_names = {c.name_zh for c in catalog.land_uses}
    names: dict[str, NameEntry] = {}
    general: dict[str, GeneralEntry] = {}
    for index, raw_entry in enumerate(top.names):
        entry = entry_label("name", raw_entry, index, key="name")
        parsed_name = validate_entry(NameEntry, raw_entry, problems, entry)
        if parsed_name is None:
            continue
        if parsed_name.name in class_names or parsed_name.name in names:
            problems.add(entry, f"{parsed_name.name!r} is already a class name or a listed name")
            continue
        for problem in _targets_problems(parsed_name, catalog):
            problems.add(entry, problem)
        names[parsed_name.name] = parsed_name
    for index, raw_entry in enumerate(top.general):
        entry = entry_label("general name", raw_entry, index, key="name")
        parsed_general = validate_entry(GeneralEntry, raw_entry, problems, entry)
        if parsed_general is None:
            continue
        if parsed_general.name in class_names or parsed_general.name in names or parsed_general.name in general:
            problems.add(entry, f"{parsed_general.name!r} is already a class name or a listed name")
            continue
        general[parsed_general.name] = parsed_general
    problems.raise_if_any()
    return survey, names, general, data
