"""Leadership dashboard: county indicators by township, computed in PostGIS from the current versions.

Every area indicator is computed by township: each feature is split by the township polygons of the
township-boundary layer (XZQ) with ``ST_Intersection`` in the county's survey plane on its precision grid
(a feature wholly inside a township is taken whole), one SQL statement per indicator (the 三调 classes share
one), and the **county total is the sum of the townships**: parts outside every township are not counted.
Areas are ellipsoidal on the CGCS2000 ellipsoid (the plane result reprojected to EPSG:4490, as geography),
unrounded until output. Red-line and boundary
layers are measured as the area of their union per township, so overlapping features count once.

Area indicators are cached per set of current layer versions (a re-import recomputes them); check
counts are read on every call.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from ..catalog import Catalog, Layer
from ..errors import ConfigurationError, NotFoundError
from ..plane_store import check_versions_in_plane
from ..rules import LEVELS
from ..settings import Settings
from ..units import m2_to_hectare, m2_to_mu

__all__ = ["AREA_UNITS", "DashboardData", "DashboardService", "Indicator", "Township", "compute_indicators"]

DLBM_FIELD: Final = "DLBM"
KCXS_FIELD: Final = "KCXS"
CZCSXM_FIELD: Final = "CZCSXM"
URBAN_TOWN_VILLAGE_CODES: Final = ("201", "202")  # 城市, 建制镇 in land_survey_codes.yaml
FOREST_CLASS: Final = "03"
WETLAND_CLASS: Final = "00"
REPORTING_TIMEZONE: Final = "Asia/Shanghai"
AREA_MODEL: Final = "ellipsoidal: survey-plane overlay measured on the CGCS2000 ellipsoid (geography)"
VERDICTS: Final = LEVELS

#: unit → (Chinese name, conversion from m², decimals at output); 亩 = m² × 15 / 10,000 exactly (units.py)
AREA_UNITS: Final[dict[str, tuple[str, Callable[[float], float], int]]] = {
    "m2": ("平方米", lambda m2: m2, 2),
    "hectare": ("公顷", m2_to_hectare, 4),
    "mu": ("亩", m2_to_mu, 2),
    "wan_mu": ("万亩", lambda m2: m2_to_mu(m2) / 10_000, 6),
    "km2": ("平方千米", lambda m2: m2 / 1_000_000, 6),
}

# ---- SQL (identifiers are fixed; layer versions, field names and code lists are bound parameters) ----

# every geometry below is in the survey plane (feature.geom_plane); areas are measured on the ellipsoid
_TOWNSHIPS = "townships AS (SELECT id, geom_plane AS geom FROM feature WHERE version_id = :xzq)"
_PIECE = "CASE WHEN ST_CoveredBy({f}.geom, {t}.geom) THEN {f}.geom ELSE ST_Intersection({f}.geom, {t}.geom) END"
_PIECE_M2 = (
    "CASE WHEN ST_CoveredBy({f}.geom, {t}.geom) THEN {f}.area_m2"
    " ELSE ST_Area(ST_Transform(ST_Intersection({f}.geom, {t}.geom), 4490)::geography) END"
)
_FEATURES = "(SELECT id, geom_plane AS geom FROM feature WHERE version_id = {v} AND ST_Dimension(geom_plane) = 2)"
_NUMBER = r"'^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$'"
_PATCHES = f"""patches AS (
    SELECT f.geom_plane AS geom, f.area_m2, upper(btrim(f.properties ->> :dlbm)) AS dlbm,
           btrim(f.properties ->> :czcsxm) AS czcsxm,
           CASE WHEN (f.properties ->> :kcxs) ~ {_NUMBER} THEN (f.properties ->> :kcxs)::float8 ELSE 0 END AS kcxs
    FROM feature f WHERE f.version_id = :dltb AND ST_Dimension(f.geom) = 2)"""

UNION_BY_TOWNSHIP_SQL = f"""
WITH {_TOWNSHIPS}
SELECT t.id,
       ST_Area(ST_Transform(ST_Union(ST_CollectionExtract({_PIECE.format(f="f", t="t")}, 3)), 4490)::geography)
FROM townships t JOIN {_FEATURES.format(v=":layer")} f ON f.geom && t.geom AND ST_Intersects(f.geom, t.geom)
GROUP BY t.id
"""

LAND_SURVEY_SQL = f"""
WITH {_TOWNSHIPS}, {_PATCHES},
pieces AS (
    SELECT t.id AS township_id, p.dlbm, p.czcsxm, {_PIECE_M2.format(f="p", t="t")} * (1 - p.kcxs) AS m2
    FROM townships t JOIN patches p ON p.geom && t.geom AND ST_Intersects(p.geom, t.geom)
)
SELECT township_id,
       coalesce(sum(m2) FILTER (WHERE dlbm = ANY(:cultivated)), 0) AS cultivated,
       coalesce(sum(m2) FILTER (WHERE dlbm = ANY(:construction)), 0) AS construction,
       coalesce(sum(m2) FILTER (WHERE dlbm = ANY(:forest)), 0) AS forest,
       coalesce(sum(m2) FILTER (WHERE dlbm = ANY(:wetland)), 0) AS wetland,
       coalesce(sum(m2) FILTER (WHERE dlbm = ANY(:construction) AND czcsxm = ANY(:urban_codes)), 0) AS urban,
       array_agg(DISTINCT coalesce(dlbm, '')) FILTER (WHERE dlbm IS NULL OR NOT dlbm = ANY(:known)) AS unknown
FROM pieces GROUP BY township_id
"""

HAS_CZCSXM_SQL = """
SELECT EXISTS (SELECT 1 FROM feature WHERE version_id = :dltb AND coalesce(btrim(properties ->> :czcsxm), '') <> '')
"""

CONSTRUCTION_IN_UDB_SQL = f"""
WITH {_TOWNSHIPS}, {_PATCHES},
udb AS (
    SELECT t.id AS township_id, ST_Union(ST_CollectionExtract({_PIECE.format(f="u", t="t")}, 3)) AS geom
    FROM townships t JOIN {_FEATURES.format(v=":udb")} u ON u.geom && t.geom AND ST_Intersects(u.geom, t.geom)
    GROUP BY t.id
)
SELECT d.township_id, sum({_PIECE_M2.format(f="p", t="d")} * (1 - p.kcxs))
FROM udb d JOIN patches p ON p.geom && d.geom AND ST_Intersects(p.geom, d.geom)
WHERE p.dlbm = ANY(:construction)
GROUP BY d.township_id
"""

# a recheck (rechecked_from set) re-runs a check already counted: left out of the statistics
CHECKS_BY_MONTH_SQL = """
SELECT to_char(created_at AT TIME ZONE :tz, 'YYYY-MM') AS month, verdict, count(*)
FROM check_record WHERE rechecked_from IS NULL GROUP BY 1, 2 ORDER BY 1, 2
"""

CHECKS_BY_TOWNSHIP_SQL = """
WITH townships AS (SELECT id, geom FROM feature WHERE version_id = :xzq)
SELECT (SELECT t.id FROM townships t WHERE ST_Intersects(t.geom, ST_PointOnSurface(c.geom)) ORDER BY t.id LIMIT 1),
       count(*)
FROM check_record c WHERE c.rechecked_from IS NULL GROUP BY 1
"""

# ---- definitions: code → (name_zh, name_en, unit, definition_zh, definition_en) ----
# fmt: off
_DEFINITIONS: Final[dict[str, tuple[str, str, str, str, str]]] = {
    "cultivated_land": ("耕地保有量", "Cultivated land", "wan_mu",
        "三调耕地图斑（is_cultivated：0101/0102/0103）的图斑地类面积 = 椭球面积 ×（1 − KCXS），与 TBDLMJ 同口径。",
        "三调 patches with a cultivated DLBM (0101/0102/0103): ellipsoidal area × (1 − KCXS), the TBDLMJ equivalent."),
    "permanent_farmland": ("永久基本农田保护面积", "Permanent basic farmland", "wan_mu",
        "永久基本农田图斑并集的椭球面积（重叠只计一次，未扣田坎）。",
        "Ellipsoidal area of the union of the farmland patches (overlaps once; ridges not deducted)."),
    "ecological_red_line": ("生态保护红线面积", "Ecological protection red line", "km2",
        "生态保护红线要素并集的椭球面积（相互重叠的要素只计一次）。",
        "Ellipsoidal area of the union of the red-line features (overlapping features count once)."),
    "urban_development_boundary": ("城镇开发边界面积", "Urban development boundary", "km2",
        "城镇开发边界要素并集的椭球面积。", "Ellipsoidal area of the union of the boundary features."),
    "udb_expansion_ratio": ("城镇开发边界扩展倍数", "Urban development boundary expansion ratio", "ratio",
        "城镇开发边界面积 ÷ 2020 年现状城镇建设用地面积。", "Boundary area ÷ 2020 urban construction land. "),
    "construction_land": ("建设用地总规模", "Construction land", "hectare",
        "三调建设用地图斑（三调地类表 is_construction，三大类口径）的图斑地类面积 = 椭球面积 ×（1 − KCXS）。",
        "三调 patches with a construction DLBM (is_construction): ellipsoidal area × (1 − KCXS)."),
    "forest_land": ("林地保有量", "Forest land", "hectare",
        "三调林地类（03：0301/0302/0305/0307）图斑地类面积 = 椭球面积 ×（1 − KCXS）；0303/0304/0306 计入湿地。",
        "三调 class 03 (0301/0302/0305/0307): ellipsoidal area × (1 − KCXS); 0303/0304/0306 count as wetland."),
    "wetland": ("湿地面积", "Wetland", "hectare",
        "三调湿地类（00：0303/0304/0306/0402/0603/1105/1106/1108）图斑地类面积 = 椭球面积 ×（1 − KCXS）。",
        "三调 wetland class 00 (0303/0304/0306/0402/0603/1105/1106/1108): ellipsoidal area × (1 − KCXS)."),
    "checks": ("合规性审查次数", "Compliance checks", "count",
        "平台记录的合规性审查次数，按地块内一点所在乡镇统计，月份按北京时间。",
        "Checks recorded by the platform, by the township of a point on the parcel; months in Beijing time."),
}
_URBAN_BY_CZCSXM = (
    "2020 年城镇建设用地 = 城镇村属性码 CZCSXM 为 201（城市）/202（建制镇）的三调建设用地图斑地类面积。",
    "2020 urban construction land = 三调 construction patches with CZCSXM 201 (city) or 202 (town), net of KCXS.",
)
_URBAN_IN_UDB = (
    "三调图斑无城镇村属性码 CZCSXM，2020 年城镇建设用地近似取城镇开发边界内的三调建设用地图斑地类面积。",
    "The 三调 patches carry no CZCSXM: 2020 urban construction land is approximated by the 三调 construction "
    "land inside the boundary (net of KCXS).",
)
# fmt: on


def _in_unit(m2: float, unit: str) -> float:
    _, convert, decimals = AREA_UNITS[unit]
    return round(convert(m2), decimals)


@dataclass(frozen=True)
class Township:
    code: str
    name: str
    feature_ids: tuple[int, ...]


@dataclass
class Indicator:
    """One indicator. ``by_township`` holds unrounded base values (m², or a count); the county is their sum.

    A ratio indicator (``denominator`` set) divides ``by_township`` by ``denominator`` township by
    township and total by total.
    """

    code: str
    layers: dict[str, dict[str, Any]]
    by_township: dict[str, float] = field(default_factory=dict)
    available: bool = True
    note: str | None = None
    denominator: dict[str, float] | None = None
    limit: float | None = None
    more_definition: tuple[str, str] = ("", "")
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def unit(self) -> str:
        return _DEFINITIONS[self.code][2]

    @property
    def total(self) -> float:
        """The county value in base units: the sum of the townships (unrounded)."""
        return sum(self.by_township.values())

    def to_dict(self, townships: list[Township]) -> dict[str, Any]:
        """The JSON form, rounded for output."""
        name_zh, name_en, unit, def_zh, def_en = _DEFINITIONS[self.code]
        unit_zh = AREA_UNITS[unit][0] if unit in AREA_UNITS else {"ratio": "倍", "count": "次"}[unit]
        out: dict[str, Any] = {
            "code": self.code,
            "name_zh": name_zh,
            "name_en": name_en,
            "unit": unit,
            "unit_zh": unit_zh,
            "definition_zh": def_zh + self.more_definition[0],
            "definition_en": def_en + self.more_definition[1],
            "available": self.available,
            "note": self.note,
            "layers": self.layers,
        }
        if not self.available:
            blank = [{"code": t.code, "name": t.name, "value": None} for t in townships]
            return {**out, "value": None, "by_township": blank}
        if self.denominator is not None:
            return {**out, **self._ratio(townships)}
        if unit == "count":
            rows = [{"code": t.code, "name": t.name, "value": int(self.by_township.get(t.code, 0))} for t in townships]
            return {**out, "value": int(self.total), "additive": True, "by_township": rows, **self.extra}
        rows = [
            {"code": t.code, "name": t.name, "value": _in_unit(m2, unit), "m2": round(m2, 2)}
            for t in townships
            for m2 in [self.by_township.get(t.code, 0.0)]
        ]
        figures = {u: _in_unit(self.total, u) for u in AREA_UNITS}
        return {**out, "value": _in_unit(self.total, unit), "figures": figures, "additive": True, "by_township": rows}

    def _ratio(self, townships: list[Township]) -> dict[str, Any]:
        assert self.denominator is not None
        limit = self.limit

        def ratio(num: float, den: float) -> dict[str, Any]:
            value = num / den if den > 0 else None
            return {
                "value": None if value is None else round(value, 4),
                "warning": value is not None and limit is not None and value > limit,
                "numerator_m2": round(num, 2),
                "denominator_m2": round(den, 2),
            }

        rows = [
            {
                "code": t.code,
                "name": t.name,
                **ratio(self.by_township.get(t.code, 0.0), self.denominator.get(t.code, 0.0)),
            }
            for t in townships
        ]
        total = ratio(self.total, sum(self.denominator.values()))
        return {**total, "additive": False, "limit": limit, "by_township": rows}


@dataclass
class DashboardData:
    """The cached part of the dashboard: townships, area indicators, versions used."""

    townships: list[Township]
    indicators: list[Indicator]
    versions: dict[str, dict[str, Any]]
    owner: dict[int, str]  # township feature id → township code
    township_version: int
    notes: list[str]


# --------------------------------------------------------------------------------------------------
# Computation
# --------------------------------------------------------------------------------------------------


def _current_versions(conn: Connection) -> dict[str, dict[str, Any]]:
    rows = conn.execute(
        text(
            "SELECT l.code, v.id, v.version_no, v.imported_at"
            " FROM layer l JOIN layer_version v ON v.id = l.current_version_id"
        )
    ).all()
    return {r[0]: {"version_id": int(r[1]), "version_no": int(r[2]), "imported_at": r[3].isoformat()} for r in rows}


def _role(catalog: Catalog, role: str) -> Layer | None:
    return next((layer for layer in catalog.layers if layer.role == role), None)


def _townships(conn: Connection, layer: Layer, version_id: int) -> tuple[list[Township], dict[int, str]]:
    """Townships by code (features sharing a code are one township), and township feature id → code."""
    rows = conn.execute(
        text("SELECT id, properties ->> :code, properties ->> :name FROM feature WHERE version_id = :v ORDER BY id"),
        {"code": layer.feature_id_field, "name": layer.name_field or layer.feature_id_field, "v": version_id},
    ).all()
    names: dict[str, str] = {}
    members: dict[str, list[int]] = defaultdict(list)
    for feature_id, code, name in rows:
        key = str(code).strip() if code not in (None, "") else f"#{feature_id}"
        names.setdefault(key, str(name).strip() if name not in (None, "") else key)
        members[key].append(int(feature_id))
    townships = [Township(code, names[code], tuple(members[code])) for code in sorted(names)]
    return townships, {fid: t.code for t in townships for fid in t.feature_ids}


def _by_code(rows: Any, owner: dict[int, str]) -> dict[str, float]:
    out: dict[str, float] = defaultdict(float)
    for feature_id, value in rows:
        if feature_id is not None and value is not None:
            out[owner[int(feature_id)]] += float(value)
    return dict(out)


def _survey_params(catalog: Catalog, layer: Layer) -> dict[str, Any]:
    missing = [n for n in (DLBM_FIELD, KCXS_FIELD, CZCSXM_FIELD) if n not in {f.name for f in layer.fields}]
    if missing:
        raise ConfigurationError(
            f"layer {layer.code} lacks the field(s) {missing} the dashboard needs", code=layer.code
        )
    classes = catalog.land_survey_classes
    return {
        "cultivated": [c.dlbm for c in classes if c.is_cultivated],
        "construction": [c.dlbm for c in classes if c.is_construction],
        "forest": [c.dlbm for c in classes if c.class_code == FOREST_CLASS],
        "wetland": [c.dlbm for c in classes if c.class_code == WETLAND_CLASS],
        "known": [c.dlbm for c in classes],
        "urban_codes": [c for c in URBAN_TOWN_VILLAGE_CODES if c in catalog.town_village_attributes],
        "dlbm": DLBM_FIELD,
        "kcxs": KCXS_FIELD,
        "czcsxm": CZCSXM_FIELD,
    }


def compute_indicators(conn: Connection, catalog: Catalog, settings: Settings) -> DashboardData:
    """The area indicators from the current versions; :class:`NotFoundError` without a township layer."""
    versions = _current_versions(conn)
    xzq = _role(catalog, "township_boundary")
    if xzq is None or xzq.code not in versions:
        code = xzq.code if xzq else "township_boundary"
        raise NotFoundError(f"the township layer {code} has no data: import it first (the dashboard is by township)")
    xzq_version = versions[xzq.code]["version_id"]
    check_versions_in_plane(conn, [v["version_id"] for v in versions.values()], catalog.survey_plane)
    townships, owner = _townships(conn, xzq, xzq_version)
    dltb, farmland, ecology, udb = (
        _role(catalog, r) for r in ("land_survey", "red_line_farmland", "red_line_ecology", "urban_boundary")
    )
    present = [layer for layer in (dltb, farmland, ecology, udb) if layer is not None and layer.code in versions]

    def refs(*layers: Layer | None) -> dict[str, Any]:
        out: dict[str, Any] = {xzq.code: versions[xzq.code]}
        out.update({layer.code: versions.get(layer.code) for layer in layers if layer is not None})
        return out

    def area(code: str, layer: Layer | None, values: dict[str, float] | None, **kw: Any) -> Indicator:
        layers = refs(layer, *kw.pop("also", ()))
        missing = [c for c, ref in layers.items() if ref is None]
        note = f"图层 {'、'.join(missing)} 尚未导入 / not imported: {', '.join(missing)}" if missing else None
        usable = {c: ref for c, ref in layers.items() if ref is not None}
        return Indicator(code, usable, values or {}, available=values is not None and not missing, note=note, **kw)

    def union_area(layer: Layer | None) -> dict[str, float] | None:
        if layer not in present:
            return None
        assert layer is not None
        params = {"xzq": xzq_version, "layer": versions[layer.code]["version_id"]}
        return _by_code(conn.execute(text(UNION_BY_TOWNSHIP_SQL), params).all(), owner)

    notes: list[str] = []
    buckets: dict[str, dict[str, float]] | None = None
    survey: dict[str, Any] = {}
    has_czcsxm = False
    if dltb in present:
        assert dltb is not None
        survey = {
            **_survey_params(catalog, dltb),
            "xzq": xzq_version,
            "dltb": versions[dltb.code]["version_id"],
        }
        has_czcsxm = bool(conn.execute(text(HAS_CZCSXM_SQL), survey).scalar())
        buckets = defaultdict(lambda: defaultdict(float))
        unknown: set[str] = set()
        for row in conn.execute(text(LAND_SURVEY_SQL), survey).mappings():
            for name in ("cultivated", "construction", "forest", "wetland", "urban"):
                buckets[name][owner[int(row["township_id"])]] += float(row[name])
            unknown.update(row["unknown"] or [])
        if unknown:
            notes.append(f"{dltb.code}: DLBM codes not in the 三调 code table were not counted: {sorted(unknown)}")

    def bucket(name: str) -> dict[str, float] | None:
        return None if buckets is None else dict(buckets[name])

    udb_values = union_area(udb)
    urban: dict[str, float] | None = None
    if buckets is not None and has_czcsxm:
        urban, definition = bucket("urban"), _URBAN_BY_CZCSXM
    else:
        definition = _URBAN_IN_UDB
        if buckets is not None and udb in present and udb is not None:
            params = {**survey, "udb": versions[udb.code]["version_id"]}
            urban = _by_code(conn.execute(text(CONSTRUCTION_IN_UDB_SQL), params).all(), owner)
    ratio = area("udb_expansion_ratio", udb, udb_values, also=(dltb,), denominator=urban or {},
                 limit=settings.udb_expansion_limit, more_definition=definition)  # fmt: skip
    ratio.available = ratio.available and urban is not None
    indicators = [
        area("cultivated_land", dltb, bucket("cultivated")),
        area("permanent_farmland", farmland, union_area(farmland)),
        area("ecological_red_line", ecology, union_area(ecology)),
        area("urban_development_boundary", udb, udb_values),
        ratio,
        area("construction_land", dltb, bucket("construction")),
        area("forest_land", dltb, bucket("forest")),
        area("wetland", dltb, bucket("wetland")),
    ]
    return DashboardData(townships, indicators, versions, owner, xzq_version, notes)


def check_counts(conn: Connection, data: DashboardData) -> Indicator:
    """Checks per month and year by verdict and per township (read fresh: checks are added all the time)."""
    by_month: dict[str, dict[str, int]] = {}
    for month, verdict, count in conn.execute(text(CHECKS_BY_MONTH_SQL), {"tz": REPORTING_TIMEZONE}):
        by_month.setdefault(month, dict.fromkeys(VERDICTS, 0))[verdict] = int(count)
    by_township: dict[str, float] = defaultdict(float)
    outside = 0
    for feature_id, count in conn.execute(text(CHECKS_BY_TOWNSHIP_SQL), {"xzq": data.township_version}):
        if feature_id is None:
            outside += int(count)
        else:
            by_township[data.owner[int(feature_id)]] += int(count)
    by_year: dict[str, dict[str, int]] = {}
    for month, counts in by_month.items():
        year = by_year.setdefault(month[:4], dict.fromkeys(VERDICTS, 0))
        for verdict, count in counts.items():
            year[verdict] += count
    extra = {
        "outside_townships": outside,
        "by_verdict": {v: sum(c[v] for c in by_month.values()) for v in VERDICTS},
        "by_month": [{"month": m, "counts": c, "total": sum(c.values())} for m, c in sorted(by_month.items())],
        "by_year": [{"year": y, "counts": c, "total": sum(c.values())} for y, c in sorted(by_year.items())],
    }
    return Indicator("checks", {}, dict(by_township), extra=extra)


class DashboardService:
    """The dashboard, its area indicators cached per set of current layer versions.

    Parameters
    ----------
    engine, catalog, settings
        Database, layer catalogue and settings (``udb_expansion_limit``).
    """

    def __init__(self, engine: Engine, catalog: Catalog, settings: Settings) -> None:
        self.engine, self.catalog, self.settings = engine, catalog, settings
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._data: DashboardData | None = None
        self.computations = 0

    def data(self, conn: Connection) -> DashboardData:
        """The area indicators, recomputed when any current version changed since the last call."""
        with self._lock:  # one computation at a time: concurrent first requests wait for it
            versions = _current_versions(conn)
            key = (
                self.catalog.fingerprint,
                self.settings.udb_expansion_limit,
                tuple(sorted((c, v["version_id"], v["imported_at"]) for c, v in versions.items())),
            )
            if self._data is None or key != self._key:
                self._data = compute_indicators(conn, self.catalog, self.settings)
                self._key = key
                self.computations += 1
            return self._data

    def dashboard(self) -> dict[str, Any]:
        """The dashboard document (JSON-ready)."""
        with self.engine.connect() as conn:
            data = self.data(conn)
            checks = check_counts(conn, data)
        return {
            "generated_at": dt.datetime.now(dt.UTC).isoformat(),
            "area_model": AREA_MODEL,
            "county_total": "sum of the townships; parts outside every township are not counted",
            "udb_expansion_limit": self.settings.udb_expansion_limit,
            "townships": [{"code": t.code, "name": t.name} for t in data.townships],
            "versions": data.versions,
            "notes": data.notes,
            "indicators": [i.to_dict(data.townships) for i in [*data.indicators, checks]],
        }
