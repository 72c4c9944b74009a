"""The two land classifications of the catalogue: 用地用海 (planning) and 三调 地类 (land survey).

* ``landuse.yaml`` — the 用地用海 classification (2023 guide) with construction / agricultural /
  linear-infrastructure / urban-construction / sea flags; second- and third-level codes inherit the flags
  of their parent unless they override them;
* ``land_survey_codes.yaml`` — the 三调 地类 code table (DLBM → DLMC, first-level class, 耕地?, 建设用地?)
  and the 城镇村属性码 (CZCSXM) table.

The two code systems overlap while meaning different things (用地用海 ``1001`` is 工业用地, 三调 ``1001`` is
铁路用地), so each has its own class. Loading validates every entry and reports every problem of a file
at once (see :mod:`gis_platform.data_files`); :class:`~gis_platform.catalog.Catalog` holds the results.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from pydantic import Field as PydanticField
from pydantic import StrictBool

from gis_platform.data_files import CodeStr, FrozenModel, NonEmptyStr, Problems, entry_label, read_yaml, validate_entry

_LAND_USE_CODE_RE = re.compile(r"^\d{2}(\d{2}){0,2}$")
_DLBM_RE = re.compile(r"^[0-9]{2}([0-9A-Z]{2})?$")


# --------------------------------------------------------------------------------------------------
# 用地用海 classification
# --------------------------------------------------------------------------------------------------


class LandUseClass(FrozenModel):
    """One 用地用海 class with its flags resolved (inherited from the parent unless overridden)."""

    code: str
    name_zh: str
    name_en: str
    level: int
    parent: str | None
    construction: bool
    """建设用地."""
    agricultural: bool
    """农用地 in the sense of the platform (01–05, see landuse.yaml for 06)."""
    linear_infrastructure: bool
    """Linear infrastructure that may be 'conditional' inside the ecological red line."""
    urban_construction: bool
    """Urban construction that must lie inside the urban development boundary."""
    sea: bool
    """A sea use (18–22, 24)."""

    @property
    def first_level(self) -> str:
        """The first-level code (two digits)."""
        return self.code[:2]


_LAND_USE_FLAGS: Final[tuple[str, ...]] = (
    "construction",
    "agricultural",
    "linear_infrastructure",
    "urban_construction",
    "sea",
)


class _LandUseEntry(FrozenModel):
    code: CodeStr
    name_zh: NonEmptyStr
    name_en: NonEmptyStr
    construction: StrictBool | None = None
    agricultural: StrictBool | None = None
    linear_infrastructure: StrictBool | None = None
    urban_construction: StrictBool | None = None
    sea: StrictBool | None = None
    children: list[dict[str, Any]] = PydanticField(default_factory=list)


class _LandUseFile(FrozenModel):
    source: str
    classes: list[dict[str, Any]] = PydanticField(min_length=1)


def load_land_use(path: Path) -> tuple[dict[str, LandUseClass], bytes]:
    raw, data = read_yaml(path)
    problems = Problems(path)
    top = validate_entry(_LandUseFile, raw, problems, "(top level)")
    problems.raise_if_any()
    assert top is not None
    classes: dict[str, LandUseClass] = {}

    def visit(raw_entry: Any, index: int, parent: LandUseClass | None) -> None:
        entry = entry_label("land-use code", raw_entry, index)
        parsed = validate_entry(_LandUseEntry, raw_entry, problems, entry)
        if parsed is None:
            return
        code = parsed.code
        if not _LAND_USE_CODE_RE.match(code):
            problems.add(entry, f"bad land-use code {code!r}: must be 2, 4 or 6 digits")
            return
        if parent is None and len(code) != 2:
            problems.add(entry, f"a top-level class must have a two-digit code, got {code!r}")
            return
        if parent is not None and (len(code) != len(parent.code) + 2 or not code.startswith(parent.code)):
            problems.add(
                entry,
                f"code {code!r} does not match its parent {parent.code!r}: "
                f"must be {parent.code!r} followed by two digits",
            )
            return
        if code in classes:
            problems.add(entry, f"duplicate land-use code {code!r}")
            return
        flags: dict[str, bool] = {}
        for flag in _LAND_USE_FLAGS:
            own = getattr(parsed, flag)
            if own is None and parent is None:
                problems.add(entry, f"first-level class must set {flag!r} (true or false)")
                return
            flags[flag] = own if own is not None else getattr(parent, flag)
        resolved = LandUseClass(
            code=code,
            name_zh=parsed.name_zh,
            name_en=parsed.name_en,
            level=len(code) // 2,
            parent=parent.code if parent else None,
            **flags,
        )
        classes[code] = resolved
        for child_index, child in enumerate(parsed.children):
            visit(child, child_index, resolved)

    for index, raw_entry in enumerate(top.classes):
        visit(raw_entry, index, None)
    problems.raise_if_any()
    return classes, data


# --------------------------------------------------------------------------------------------------
# 三调 地类 codes
# --------------------------------------------------------------------------------------------------


class LandSurveyClass(FrozenModel):
    """One 三调 地类 (DLBM) with its first-level class and flags."""

    dlbm: str
    dlmc: str
    name_en: str
    class_code: str
    class_name_zh: str
    is_cultivated: bool
    """耕地 (01xx)."""
    is_construction: bool
    """建设用地 in the 三大类 sense of the 三调."""


class TownVillageAttribute(FrozenModel):
    """One 城镇村属性码 (CZCSXM) of the 三调."""

    code: CodeStr
    name_zh: NonEmptyStr
    name_en: NonEmptyStr


class _SurveyCodeEntry(FrozenModel):
    dlbm: CodeStr
    dlmc: NonEmptyStr
    name_en: NonEmptyStr
    is_cultivated: StrictBool | None = None
    is_construction: StrictBool | None = None


class _SurveyClassEntry(FrozenModel):
    code: CodeStr
    name_zh: NonEmptyStr
    name_en: NonEmptyStr
    is_cultivated: StrictBool
    is_construction: StrictBool
    codes_share_prefix: StrictBool = True
    codes: list[dict[str, Any]] = PydanticField(min_length=1)


class _SurveyFile(FrozenModel):
    source: str
    classes: list[dict[str, Any]] = PydanticField(min_length=1)
    town_village_attributes: list[dict[str, Any]] = PydanticField(default_factory=list)


def load_land_survey(
    path: Path,
) -> tuple[dict[str, LandSurveyClass], dict[str, TownVillageAttribute], bytes]:
    raw, data = read_yaml(path)
    problems = Problems(path)
    top = validate_entry(_SurveyFile, raw, problems, "(top level)")
    problems.raise_if_any()
    assert top is not None
    codes: dict[str, LandSurveyClass] = {}
    class_codes: set[str] = set()
    for index, raw_class in enumerate(top.classes):
        entry = entry_label("地类 class", raw_class, index)
        cls = validate_entry(_SurveyClassEntry, raw_class, problems, entry)
        if cls is None:
            continue
        if not re.fullmatch(r"\d{2}", cls.code):
            problems.add(entry, f"bad first-level class code {cls.code!r}: must be two digits")
            continue
        if cls.code in class_codes:
            problems.add(entry, f"duplicate first-level class code {cls.code!r}")
            continue
        class_codes.add(cls.code)
        for code_index, raw_code in enumerate(cls.codes):
            code_entry = entry_label("DLBM", raw_code, code_index, key="dlbm")
            item = validate_entry(_SurveyCodeEntry, raw_code, problems, code_entry)
            if item is None:
                continue
            dlbm = item.dlbm.upper()
            if not _DLBM_RE.match(dlbm):
                problems.add(code_entry, f"bad DLBM {item.dlbm!r}: must be 2 or 4 characters like '0101' or '05H1'")
                continue
            if cls.codes_share_prefix and not dlbm.startswith(cls.code):
                problems.add(
                    code_entry, f"DLBM {dlbm!r} does not start with its class code {cls.code!r} (class {cls.name_zh})"
                )
                continue
            if dlbm in codes:
                problems.add(code_entry, f"duplicate DLBM {dlbm!r} (already in class {codes[dlbm].class_code!r})")
                continue
            codes[dlbm] = LandSurveyClass(
                dlbm=dlbm,
                dlmc=item.dlmc,
                name_en=item.name_en,
                class_code=cls.code,
                class_name_zh=cls.name_zh,
                is_cultivated=cls.is_cultivated if item.is_cultivated is None else item.is_cultivated,
                is_construction=cls.is_construction if item.is_construction is None else item.is_construction,
            )
    attributes: dict[str, TownVillageAttribute] = {}
    for index, raw_attr in enumerate(top.town_village_attributes):
        entry = entry_label("城镇村属性码", raw_attr, index)
        attr = validate_entry(TownVillageAttribute, raw_attr, problems, entry)
        if attr is None:
            continue
        if attr.code in attributes:
            problems.add(entry, f"duplicate 城镇村属性码 {attr.code!r}")
            continue
        attributes[attr.code] = attr
    problems.raise_if_any()
    return codes, attributes, data
