"""The layer catalogue: the only reader of the ``layers/`` folder.

Three data files live in ``layers/``: ``catalog.yaml`` — the standard county layers (code, names, group,
geometry, fields, style, role …), plus ``storage_srid``, ``survey_plane`` and ``default_area_model`` — and the two land
classifications ``landuse.yaml`` (用地用海) and ``land_survey_codes.yaml`` (三调 地类), whose models and
loaders are in :mod:`gis_platform.classifications`.

Everything is validated on load.  A problem raises :class:`~gis_platform.errors.CatalogError` whose
message names the file, the entry (layer code, land-use code, DLBM …) and the problem; every problem
found in a file is reported, one per line.  The result is an immutable :class:`Catalog`.

Note that 用地用海 codes and 三调 DLBM codes overlap while meaning different things (用地用海 ``1001`` is
工业用地, 三调 ``1001`` is 铁路用地): :meth:`Catalog.land_use` / :meth:`Catalog.is_construction` take
用地用海 codes only, :meth:`Catalog.land_survey_class` takes 三调 DLBM codes only.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Final, Literal, get_args

from pydantic import (
    AfterValidator,
    BeforeValidator,
    StrictBool,
    StrictInt,
    model_validator,
)
from pydantic import Field as PydanticField

from gis_platform.classifications import (
    LandSurveyClass,
    LandUseClass,
    TownVillageAttribute,
    load_land_survey,
    load_land_use,
)
from gis_platform.data_files import (
    CodeStr,
    FrozenModel,
    NonEmptyStr,
    Problems,
    entry_label,
    read_yaml,
    require_str,
    validate_entry,
)
from gis_platform.errors import CatalogError, CRSError, UnknownLandUseError, UnknownLayerError
from gis_platform.survey_plane import DEFAULT_NOISE_WIDTH_M, SurveyPlane

__all__ = [
    "CATALOG_FILE",
    "CATALOG_FILES",
    "DEFAULT_LAYERS_DIR",
    "GROUPS",
    "LANDUSE_FILE",
    "LAND_SURVEY_FILE",
    "ROLES",
    "Catalog",
    "Field",
    "Layer",
    "Style",
    "StyleCategorization",
    "StyleCategory",
    "catalog_fingerprint",
    "clear_catalog_cache",
    "load_catalog",
]

DEFAULT_LAYERS_DIR: Final[Path] = Path(__file__).resolve().parents[1] / "layers"
CATALOG_FILE: Final[str] = "catalog.yaml"
LANDUSE_FILE: Final[str] = "landuse.yaml"
LAND_SURVEY_FILE: Final[str] = "land_survey_codes.yaml"
#: The files a catalogue is read from, in fingerprint order.
CATALOG_FILES: Final[tuple[str, ...]] = (CATALOG_FILE, LANDUSE_FILE, LAND_SURVEY_FILE)

Group = Literal["现状", "规划", "管理"]
GeometryType = Literal["polygon", "line", "point"]
FieldType = Literal["string", "integer", "number"]
Unit = Literal["m2", "hectare", "mu", "km2", "person", "10k_yuan"]
Role = Literal[
    "township_boundary",  # XZQ: 乡镇行政区 (statistics by township, splitting parcels)
    "land_survey",  # DLTB: 三调地类图斑 (现状, 地类统计)
    "red_line_farmland",  # YJJBNT: 永久基本农田
    "red_line_ecology",  # STBHHX: 生态保护红线
    "urban_boundary",  # CZKFBJ: 城镇开发边界
    "zoning",  # GHFQ: 规划分区
    "township_plan",  # YDYHGHFQ: 乡镇国土空间规划 用地用海
    "hazard_zone",  # DZZHYFQ: 地质灾害易发区
    "hazard_point",  # DZZHD: 地质灾害隐患点
    "other",  # any further layer; the only role several layers may share
]
AreaModel = Literal["ellipsoidal", "planar"]

#: Layer groups in layer-tree order.
GROUPS: Final[tuple[str, ...]] = get_args(Group)
#: The closed set of layer roles (``other`` may be shared; every other role names at most one layer).
ROLES: Final[tuple[str, ...]] = get_args(Role)
SHAREABLE_ROLE: Final[str] = "other"

_COLOUR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_DASH_RE = re.compile(r"^\d+(\.\d+)?([ ,]+\d+(\.\d+)?)*$")
_LAYER_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_FIELD_NAME_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")


# --------------------------------------------------------------------------------------------------
# Value validators
# --------------------------------------------------------------------------------------------------


def _check_colour(value: str) -> str:
    if not _COLOUR_RE.match(value):
        raise ValueError(f"bad colour {value!r}: must be #RRGGBB (six hex digits)")
    return value.upper()


def _check_dash(value: str | None) -> str | None:
    if value is None:
        return None
    if not _DASH_RE.match(value.strip()):
        raise ValueError(f"bad dash pattern {value!r}: must be numbers separated by spaces, e.g. '6 4'")
    return " ".join(re.split(r"[ ,]+", value.strip()))


def _check_field_name(value: str) -> str:
    if not _FIELD_NAME_RE.match(value):
        raise ValueError(f"bad field name {value!r}: must be upper-case letters, digits or '_' as in the data standard")
    return value


Colour = Annotated[str, AfterValidator(_check_colour)]
Dash = Annotated[str | None, AfterValidator(_check_dash)]
FieldName = Annotated[str, BeforeValidator(require_str), AfterValidator(_check_field_name)]


# --------------------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------------------


class Field(FrozenModel):
    """One attribute of a layer, named as in the data standard (upper case)."""

    name: FieldName
    label_zh: NonEmptyStr
    label_en: NonEmptyStr
    type: FieldType
    key: StrictBool = False
    """Shown in identify / check result tables."""
    unit: Unit | None = None
    """Unit of a numeric value (``m2``, ``hectare``, ``mu``, ``km2``, ``person``, ``10k_yuan`` = 万元)."""
    aliases: tuple[FieldName, ...] = ()
    """Other names the same attribute carries in data seen in the wild (e.g. ``DLDM`` for ``DLBM``)."""


class StyleCategory(FrozenModel):
    """One class of a categorised style; unset drawing attributes fall back to the layer's base style."""

    values: tuple[CodeStr, ...] = PydanticField(min_length=1)
    label_zh: NonEmptyStr
    label_en: str | None = None
    fill: Colour | None = None
    fill_opacity: float | None = PydanticField(default=None, ge=0.0, le=1.0)
    stroke: Colour | None = None
    stroke_width: float | None = PydanticField(default=None, ge=0.0)
    dash: Dash = None
    marker_color: Colour | None = None

    def matches(self, value: str, match: Literal["exact", "prefix"]) -> bool:
        """Whether an attribute value falls in this class."""
        if match == "exact":
            return value in self.values
        return any(value.startswith(v) for v in self.values)


class StyleCategorization(FrozenModel):
    """A categorised style: classes keyed on one attribute, first matching class wins."""

    field: FieldName
    match: Literal["exact", "prefix"] = "exact"
    categories: tuple[StyleCategory, ...] = PydanticField(min_length=1)

    def category_for(self, value: str | None) -> StyleCategory | None:
        """The first class matching ``value`` (stripped; upper-cased for prefix matching on codes), or None."""
        if value is None:
            return None
        text = value.strip()
        if self.match == "prefix":
            text = text.upper()
        for category in self.categories:
            if category.matches(text, self.match):
                return category
        return None


class Style(FrozenModel):
    """Map style of a layer, in the colours of Chinese planning practice (see the YAML for sources)."""

    fill: Colour | None = None
    fill_opacity: float = PydanticField(default=0.5, ge=0.0, le=1.0)
    stroke: Colour = "#000000"
    stroke_width: float = PydanticField(default=1.0, ge=0.0)
    dash: Dash = None
    pattern: Literal["solid", "hatch", "none"] = "solid"
    """Fill pattern hint for the front end (``hatch`` = diagonal hatching, ``none`` = outline only)."""
    marker_color: Colour | None = None
    marker_radius: float | None = PydanticField(default=None, gt=0.0)
    categorized: StyleCategorization | None = None

    def resolve(self, value: str | None = None) -> dict[str, Any]:
        """Drawing attributes for a feature whose categorised attribute has ``value``."""
        keys = ("fill", "fill_opacity", "stroke", "stroke_width", "dash", "marker_color")
        out: dict[str, Any] = {k: getattr(self, k) for k in keys}
        out["pattern"] = self.pattern
        out["marker_radius"] = self.marker_radius
        category = self.categorized.category_for(value) if self.categorized else None
        if category is not None:
            for k in keys:
                override = getattr(category, k)
                if override is not None:
                    out[k] = override
            out["label_zh"] = category.label_zh
        return out


class Layer(FrozenModel):
    """One standard layer of the county one-map."""

    code: CodeStr
    name_zh: NonEmptyStr
    name_en: NonEmptyStr
    group: Group
    geometry_type: GeometryType
    role: Role
    check_enabled: StrictBool
    """Whether a parcel compliance check looks at this layer by default."""
    feature_id_field: FieldName
    name_field: FieldName | None = None
    fields: tuple[Field, ...] = PydanticField(min_length=1)
    style: Style
    description: str | None = None

    @model_validator(mode="after")
    def _check_consistency(self) -> Layer:
        if not _LAYER_CODE_RE.match(self.code):
            raise ValueError(f"bad layer code {self.code!r}: must be upper-case letters, digits or '_'")
        seen: dict[str, str] = {}  # upper-cased name or alias -> field that owns it
        for f in self.fields:
            if f.name.upper() in seen:
                owner = seen[f.name.upper()]
                if owner.upper() == f.name.upper():
                    raise ValueError(f"duplicate field name {f.name!r} (field names must be unique, ignoring case)")
                raise ValueError(f"field name {f.name!r} is already an alias of field {owner!r}")
            seen[f.name.upper()] = f.name
        for f in self.fields:
            for alias in f.aliases:
                alias_owner = seen.get(alias.upper())
                if alias_owner is not None and alias_owner != f.name:
                    raise ValueError(f"alias {alias!r} of field {f.name!r} clashes with field {alias_owner!r}")
                if alias_owner == f.name:
                    raise ValueError(f"alias {alias!r} of field {f.name!r} repeats a name the field already has")
                seen[alias.upper()] = f.name
        names = ", ".join(f.name for f in self.fields)
        field_names = {f.name for f in self.fields}
        if self.feature_id_field not in field_names:
            raise ValueError(f"feature_id_field {self.feature_id_field!r} is not among the fields ({names})")
        if self.name_field is not None and self.name_field not in field_names:
            raise ValueError(f"name_field {self.name_field!r} is not among the fields ({names})")
        if self.style.categorized is not None and self.style.categorized.field not in field_names:
            raise ValueError(
                f"style.categorized.field {self.style.categorized.field!r} is not among the fields ({names})"
            )
        if self.geometry_type == "point":
            if self.style.marker_color is None or self.style.marker_radius is None:
                raise ValueError("a point layer's style needs marker_color and marker_radius")
        elif self.geometry_type == "polygon" and self.style.fill is None:
            raise ValueError("a polygon layer's style needs a fill colour (use fill_opacity 0 for outline only)")
        return self

    @property
    def key_fields(self) -> tuple[Field, ...]:
        """Fields shown in identify / check tables, in catalogue order."""
        return tuple(f for f in self.fields if f.key)

    @property
    def field_names(self) -> tuple[str, ...]:
        """Canonical field names in catalogue order."""
        return tuple(f.name for f in self.fields)

    def get_field(self, name: str) -> Field | None:
        """The field called ``name`` or carrying it as an alias (case-insensitive), or None."""
        wanted = name.strip().upper()
        for f in self.fields:
            if f.name.upper() == wanted or any(a.upper() == wanted for a in f.aliases):
                return f
        return None

    def map_fields(self, source_names: Iterable[str]) -> dict[str, str]:
        """Map source field names to canonical catalogue names.

        Matching is case-insensitive (surrounding blanks ignored) on the canonical name first (an exact
        spelling preferred), then on the aliases.  A canonical name is given to one source field only: when
        a source carries both the canonical name and an alias (``DLBM`` and ``DLDM``), the canonical one
        wins and the alias keeps its own name, so the mapped names stay unique.  Unknown fields map to
        themselves and are kept.
        """
        names = list(source_names)
        by_name = {f.name.upper(): f.name for f in self.fields}
        by_alias = {a.upper(): f.name for f in self.fields for a in f.aliases}
        result: dict[str, str] = {}
        taken: set[str] = set()
        exact = {f.name for f in self.fields}
        for src in names:  # pass 1: canonical names spelled exactly
            if src in exact and src not in taken:
                result[src] = src
                taken.add(src)
        for src in names:  # pass 2: canonical names in another case
            canonical = by_name.get(src.strip().upper())
            if src not in result and canonical is not None and canonical not in taken:
                result[src] = canonical
                taken.add(canonical)
        for src in names:  # pass 3: aliases; whatever is left keeps its own name
            if src in result:
                continue
            canonical = by_alias.get(src.strip().upper())
            if canonical is not None and canonical not in taken:
                result[src] = canonical
                taken.add(canonical)
            else:
                result[src] = src
        return {src: result[src] for src in names}


def _epsg_code(value: Any) -> int:
    text = require_str(value).strip().upper()
    if not re.fullmatch(r"EPSG:\d{4,5}", text):
        raise ValueError(f"{value!r} is not an EPSG code written as 'EPSG:4547'")
    return int(text.split(":")[1])


class _SurveyPlaneEntry(FrozenModel):
    crs: Annotated[int, BeforeValidator(_epsg_code)]
    noise_width_m: Annotated[float, PydanticField(gt=0.0, le=0.01, allow_inf_nan=False)] = DEFAULT_NOISE_WIDTH_M

    @model_validator(mode="after")
    def _cm_family(self) -> _SurveyPlaneEntry:
        try:  # a CGCS2000 GK zone by central meridian, EPSG:4534–4554
            SurveyPlane(self.crs, self.noise_width_m)
        except CRSError as exc:
            raise ValueError(str(exc)) from None
        return self


class _CatalogFile(FrozenModel):
    storage_srid: StrictInt
    default_area_model: AreaModel
    survey_plane: _SurveyPlaneEntry
    layers: list[dict[str, Any]] = PydanticField(min_length=1)


# --------------------------------------------------------------------------------------------------
# Per-file loaders
# --------------------------------------------------------------------------------------------------


def _load_layers(path: Path) -> tuple[_CatalogFile, tuple[Layer, ...], bytes]:
    raw, data = read_yaml(path)
    problems = Problems(path)
    top = validate_entry(_CatalogFile, raw, problems, "(top level)")
    problems.raise_if_any()
    assert top is not None
    layers: list[Layer] = []
    seen_codes: dict[str, int] = {}
    seen_roles: dict[str, str] = {}
    for index, raw_layer in enumerate(top.layers):
        entry = entry_label("layer", raw_layer, index)
        layer = validate_entry(Layer, raw_layer, problems, entry)
        if layer is None:
            continue
        upper = layer.code.upper()
        if upper in seen_codes:
            problems.add(entry, f"duplicate layer code {layer.code!r} (already used by layer #{seen_codes[upper] + 1})")
            continue
        seen_codes[upper] = index
        if layer.role != SHAREABLE_ROLE:
            if layer.role in seen_roles:
                problems.add(
                    entry, f"duplicate role {layer.role!r} (already the role of layer {seen_roles[layer.role]!r})"
                )
                continue
            seen_roles[layer.role] = layer.code
        layers.append(layer)
    problems.raise_if_any()
    return top, tuple(layers), data


# --------------------------------------------------------------------------------------------------
# The catalogue
# --------------------------------------------------------------------------------------------------


class Catalog:
    """The validated, immutable layer catalogue (layers, 用地用海 classes, 三调 地类 codes)."""

    __slots__ = (
        "_attributes",
        "_by_code",
        "_land_survey",
        "_land_use",
        "_layers",
        "default_area_model",
        "directory",
        "fingerprint",
        "storage_srid",
        "survey_plane",
    )

    def __init__(
        self,
        *,
        directory: Path,
        storage_srid: int,
        survey_plane: SurveyPlane,
        default_area_model: str,
        layers: Iterable[Layer],
        land_use: Mapping[str, LandUseClass],
        land_survey: Mapping[str, LandSurveyClass],
        town_village_attributes: Mapping[str, TownVillageAttribute],
        fingerprint: str,
    ) -> None:
        self.directory: Path = directory
        """The folder the catalogue was read from."""
        self.storage_srid: int = storage_srid
        """SRID every geometry is stored in (4490, CGCS2000 geographic)."""
        self.survey_plane: SurveyPlane = survey_plane
        """The county's survey plane (CGCS2000 GK zone, central-meridian family): every overlay runs in it."""
        self.default_area_model: str = default_area_model
        """``ellipsoidal`` (survey practice) or ``planar``."""
        self.fingerprint: str = fingerprint
        """SHA-256 over the three catalogue files: which catalogue version a result was computed with."""
        self._layers: tuple[Layer, ...] = tuple(layers)
        self._by_code: Mapping[str, Layer] = MappingProxyType({layer.code.upper(): layer for layer in self._layers})
        self._land_use: Mapping[str, LandUseClass] = MappingProxyType(dict(land_use))
        self._land_survey: Mapping[str, LandSurveyClass] = MappingProxyType(dict(land_survey))
        self._attributes: Mapping[str, TownVillageAttribute] = MappingProxyType(dict(town_village_attributes))

    def __repr__(self) -> str:
        return f"Catalog({self.directory}, layers={list(self.codes)})"

    # ---- layers --------------------------------------------------------------------------------

    @property
    def layers(self) -> tuple[Layer, ...]:
        """All layers in catalogue order."""
        return self._layers

    @property
    def codes(self) -> tuple[str, ...]:
        """All layer codes in catalogue order."""
        return tuple(layer.code for layer in self._layers)

    @property
    def groups(self) -> tuple[str, ...]:
        """The layer groups in layer-tree order (现状, 规划, 管理)."""
        return GROUPS

    def layer(self, code: str) -> Layer:
        """The layer with ``code`` (case-insensitive); :class:`UnknownLayerError` lists the known codes."""
        layer = self._by_code.get(code.strip().upper()) if isinstance(code, str) else None
        if layer is None:
            known = ", ".join(self.codes)
            raise UnknownLayerError(
                f"unknown layer {code!r} (known layers: {known})", code=code, known=list(self.codes)
            )
        return layer

    def has_layer(self, code: str) -> bool:
        """Whether ``code`` names a catalogue layer (case-insensitive)."""
        return code.strip().upper() in self._by_code

    def layers_in_group(self, group: str) -> tuple[Layer, ...]:
        """The layers of one group (现状 / 规划 / 管理) in catalogue order."""
        if group not in GROUPS:
            raise UnknownLayerError(
                f"unknown layer group {group!r} (known groups: {', '.join(GROUPS)})", group=group, known=list(GROUPS)
            )
        return tuple(layer for layer in self._layers if layer.group == group)

    def check_layers(self) -> tuple[Layer, ...]:
        """The layers a parcel compliance check looks at by default, in catalogue order."""
        return tuple(layer for layer in self._layers if layer.check_enabled)

    def layer_by_role(self, role: str) -> Layer:
        """The layer playing ``role`` (e.g. ``red_line_farmland``); roles other than ``other`` are unique."""
        if role not in ROLES or role == SHAREABLE_ROLE:
            raise UnknownLayerError(
                f"unknown layer role {role!r} (known roles: {', '.join(r for r in ROLES if r != SHAREABLE_ROLE)})",
                role=role,
            )
        for layer in self._layers:
            if layer.role == role:
                return layer
        raise UnknownLayerError(f"no layer in the catalogue has role {role!r}", role=role, known=list(self.codes))

    # ---- 用地用海 --------------------------------------------------------------------------------

    @property
    def land_uses(self) -> tuple[LandUseClass, ...]:
        """All 用地用海 classes, parents before children, in file order."""
        return tuple(self._land_use.values())

    def land_use(self, code: str) -> LandUseClass:
        """The 用地用海 class for ``code`` (2, 4 or 6 digits); :class:`UnknownLandUseError` if not listed."""
        key = code.strip() if isinstance(code, str) else code
        found = self._land_use.get(key) if isinstance(key, str) else None
        if found is None:
            raise UnknownLandUseError(
                f"unknown 用地用海 code {code!r} (not in {self.directory / LANDUSE_FILE}; "
                "first-level codes are 01–24, e.g. '0701')",
                code=code,
            )
        return found

    def is_construction(self, code: str) -> bool:
        """Whether the 用地用海 ``code`` is construction land (建设用地). Not for 三调 DLBM codes."""
        return self.land_use(code).construction

    # ---- 三调 --------------------------------------------------------------------------------------

    @property
    def land_survey_classes(self) -> tuple[LandSurveyClass, ...]:
        """All 三调 地类 codes in file order."""
        return tuple(self._land_survey.values())

    def land_survey_class(self, dlbm: str) -> LandSurveyClass:
        """The 三调 地类 for ``dlbm`` (blanks stripped, case-insensitive); :class:`UnknownLandUseError` if unknown."""
        key = dlbm.strip().upper() if isinstance(dlbm, str) else None
        found = self._land_survey.get(key) if key is not None else None
        if found is None:
            raise UnknownLandUseError(
                f"unknown 三调 地类编码 (DLBM) {dlbm!r} (not in {self.directory / LAND_SURVEY_FILE})", dlbm=dlbm
            )
        return found

    @property
    def town_village_attributes(self) -> Mapping[str, TownVillageAttribute]:
        """The 三调 城镇村属性码 (CZCSXM) table, keyed by code."""
        return self._attributes


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def catalog_fingerprint(contents: Mapping[str, bytes]) -> str:
    """:attr:`Catalog.fingerprint` of the catalogue files' bytes (``contents``: file name → bytes, all of
    :data:`CATALOG_FILES`); check replays key their catalogue snapshots by it."""
    digest = hashlib.sha256()
    for name in CATALOG_FILES:
        digest.update(name.encode() + b"\0" + contents[name] + b"\0")
    return digest.hexdigest()


def _build(directory: Path) -> Catalog:
    top, layers, catalog_bytes = _load_layers(directory / CATALOG_FILE)
    land_use, land_use_bytes = load_land_use(directory / LANDUSE_FILE)
    land_survey, attributes, survey_bytes = load_land_survey(directory / LAND_SURVEY_FILE)
    contents = {CATALOG_FILE: catalog_bytes, LANDUSE_FILE: land_use_bytes, LAND_SURVEY_FILE: survey_bytes}
    return Catalog(
        directory=directory,
        storage_srid=top.storage_srid,
        survey_plane=SurveyPlane(top.survey_plane.crs, top.survey_plane.noise_width_m),
        default_area_model=top.default_area_model,
        layers=layers,
        land_use=land_use,
        land_survey=land_survey,
        town_village_attributes=attributes,
        fingerprint=catalog_fingerprint(contents),
    )


@functools.lru_cache(maxsize=8)
def _load_cached(directory: Path) -> Catalog:
    return _build(directory)


def load_catalog(directory: Path | None = None) -> Catalog:
    """Load and validate the catalogue from ``directory`` (default: ``layers/`` at the repository root).

    The result is cached per resolved directory; call :func:`clear_catalog_cache` after editing the files.
    Raises :class:`CatalogError` naming the file, entry and problem when a file is malformed.
    """
    folder = (directory if directory is not None else DEFAULT_LAYERS_DIR).expanduser().resolve()
    if not folder.is_dir():
        raise CatalogError(
            f"{folder}: (directory): layer catalogue folder does not exist",
            file=str(folder),
            entry="(directory)",
            problem="missing",
        )
    return _load_cached(folder)


def clear_catalog_cache() -> None:
    """Forget every cached catalogue (e.g. after the YAML files changed)."""
    _load_cached.cache_clear()
