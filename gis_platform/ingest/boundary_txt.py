"""Reader for the 国土 boundary-coordinate TXT ("界址点坐标" exchange format).

Layout::

    [属性描述]
    格式版本号=1.01版本
    坐标系=2000国家大地坐标系
    几度分带=3
    投影类型=高斯克吕格
    计量单位=米
    带号=38
    精度=0.0001
    转换参数=,,,,,,
    [地块坐标]
    5,0.5000,DK-01,示例地块,面,J50G055076,建设用地,0702,@
    J1,1,3456700.000,38512300.000
    J2,1,3456700.000,38512400.000
    ...

Per parcel one line ``界址点数,地块面积(公顷),地块编号,地块名称,面|线|点,图幅号,地块用途,地类编码,@``
followed by point lines ``点号,圈号,X,Y`` where **X is the northing and Y the easting** (which may carry
the zone prefix).  圈号 1 is the outer ring, 2, 3 … are holes; each ring closes by repeating its first
point.  Output geometries have x = easting, y = northing.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from gis_platform.crs import resolve_crs
from gis_platform.errors import CRSError, FileLimitError, InputFileError, ParcelError
from gis_platform.gk_zones import easting_zone_prefix, parse_zone_header

from .encoding import decode_text
from .limits import ReadLimits, VertexBudget
from .source import SourceData

__all__ = ["ATTRIBUTE_COLUMNS", "DERIVED_COLUMNS", "read_boundary_txt"]

FORMAT = "boundary-txt"

ATTRIBUTE_COLUMNS = [
    "DKBH",  # 地块编号
    "DKMC",  # 地块名称
    "TFH",  # 图幅号
    "DKYT",  # 地块用途
    "DLBM",  # 地类编码
    "HEADER_AREA_HA",  # 地块面积 (公顷) as declared in the parcel line
    "JZDS",  # 界址点数 as declared
    "PLANAR_AREA_HA",  # planar Gauss-Krüger area computed from the coordinates (公顷, unrounded)
    "AREA_DIFF_PCT",  # (computed − declared) / declared × 100, NaN when not comparable
]

#: Columns computed by the reader, not fields of the file (left out where a user picks the file's fields).
DERIVED_COLUMNS = ("PLANAR_AREA_HA", "AREA_DIFF_PCT")

AREA_TOLERANCE_PCT = 1.0
"""Relative difference between declared and computed parcel area above which a note is written."""

_SECTION_RE = re.compile(r"^\s*[\[【［]\s*(?P<name>[^\]】］]*?)\s*[\]】］]\s*$")
_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_SEPARATOR_RE = re.compile(r"\s*[,，]\s*")

_HEADER_SECTION = "属性描述"
_COORD_SECTION = "地块坐标"

_UNIT_METRE = {"米", "M", "METRE", "METER", "METRES", "METERS", "公尺"}
_GEOMETRY_TYPES = {"面": "polygon", "线": "line", "点": "point"}


@dataclass
class _Point:
    line: int
    name: str
    ring: int
    northing: float
    easting: float


@dataclass
class _Parcel:
    line: int
    declared_count: int
    area_ha: float | None
    fields: dict[str, str]
    kind: str
    points: list[_Point] = field(default_factory=list)
    rings: list[_Ring] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.fields["DKBH"] or self.fields["DKMC"] or f"at line {self.line}"


@dataclass
class _Ring:
    number: int
    points: list[_Point]
    closed: bool = False

    @property
    def line(self) -> int:
        return self.points[0].line

    def coords(self) -> list[tuple[float, float]]:
        """Distinct sequence (without the closing repeat) as (easting, northing)."""
        return [(p.easting, p.northing) for p in self.points]


def _split(line: str) -> list[str]:
    line = line.strip()
    parts = _SEPARATOR_RE.split(line) if re.search("[,，]", line) else line.split()
    while parts and parts[-1] == "":
        parts.pop()
    return [p.strip() for p in parts]


class _Reader:
    def __init__(self, text: str, source: str, budget: VertexBudget | None = None) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.budget = budget or VertexBudget(None, source)
        self.meta: dict[str, str] = {}
        self.meta_lines: dict[str, int] = {}
        self.notes: list[str] = []
        self.parcels: list[_Parcel] = []

    # -- errors ---------------------------------------------------------------------------------

    def error(self, line: int | None, message: str, **details: object) -> InputFileError:
        where = f"{self.source}: line {line}: " if line is not None else f"{self.source}: "
        return InputFileError(where + message, file=self.source, line=line, **details)

    def crs_error(self, line: int | None, message: str, **details: object) -> CRSError:
        where = f"{self.source}: line {line}: " if line is not None else f"{self.source}: "
        return CRSError(where + message, file=self.source, line=line, **details)

    # -- parsing --------------------------------------------------------------------------------

    def parse(self) -> None:
        section: str | None = None
        seen_coord_section = False
        parcel: _Parcel | None = None
        for number, raw in enumerate(self.lines, start=1):
            line = raw.strip().lstrip("\ufeff")
            if not line:
                continue
            match = _SECTION_RE.match(line)
            if match is not None:
                section = match.group("name").replace(" ", "")
                if section == _COORD_SECTION:
                    seen_coord_section = True
                elif section != _HEADER_SECTION:
                    self.notes.append(f"line {number}: section [{section}] is not part of the format; ignored")
                continue
            if section == _HEADER_SECTION:
                self._header_line(number, line)
            elif section == _COORD_SECTION:
                parts = _split(line)
                is_parcel = bool(parts) and parts[-1] == "@"
                if not is_parcel and len(parts) >= 5 and parts[0].isdigit() and parts[4] in _GEOMETRY_TYPES:
                    self.notes.append(f"line {number}: parcel line does not end with '@'")
                    parts.append("@")
                    is_parcel = True
                if is_parcel:
                    if parcel is not None:
                        self._finish(parcel, next_line=number)
                    parcel = self._parcel_line(number, parts[:-1])
                else:
                    if parcel is None:
                        raise self.error(number, f"point line {line!r} before the first parcel line (…,@)")
                    parcel.points.append(self._point_line(number, parts, line))
                    limit = self.budget.per_feature
                    if limit is not None and len(parcel.points) > limit:  # stop here, not after the whole file
                        self.budget.feature(len(parcel.points), f"line {number}: parcel {parcel.label}")
            elif section is None:
                raise self.error(number, f"text before the [{_HEADER_SECTION}] section: {line!r}")
        if not seen_coord_section:
            raise self.error(None, f"missing [{_COORD_SECTION}] section: not a boundary-coordinate TXT")
        if parcel is None:
            raise self.error(None, f"the [{_COORD_SECTION}] section holds no parcel")
        self._finish(parcel, next_line=None)

    def _header_line(self, number: int, line: str) -> None:
        key, sep, value = line.replace("＝", "=").partition("=")
        if not sep:
            self.notes.append(f"line {number}: header line without '=' ignored: {line!r}")
            return
        key = key.strip()
        if key in self.meta:
            self.notes.append(f"line {number}: {key} given twice; the later value {value.strip()!r} is used")
        self.meta[key] = value.strip()
        self.meta_lines[key] = number

    def _parcel_line(self, number: int, parts: list[str]) -> _Parcel:
        if len(parts) < 5:
            raise self.error(
                number,
                "parcel line needs 界址点数,地块面积,地块编号,地块名称,面/线/点,图幅号,地块用途,地类编码,@ "
                f"but has {len(parts)} fields before '@'",
            )
        if len(parts) != 8:
            self.notes.append(f"line {number}: parcel line has {len(parts)} fields before '@' (expected 8)")
        parts = parts + [""] * (8 - len(parts))
        count_text, area_text, dkbh, dkmc, kind_text, tfh, dkyt, dlbm = parts[:8]
        if not count_text.isdigit():
            raise self.error(number, f"界址点数 {count_text!r} is not a whole number")
        area: float | None = None
        if area_text:
            if not _NUMBER_RE.match(area_text):
                raise self.error(number, f"地块面积 {area_text!r} is not a number")
            area = float(area_text)
        kind = _GEOMETRY_TYPES.get(kind_text)
        if kind is None:
            raise self.error(number, f"geometry type {kind_text!r} is not 面, 线 or 点")
        fields = {"DKBH": dkbh, "DKMC": dkmc, "TFH": tfh, "DKYT": dkyt, "DLBM": dlbm}
        parcel = _Parcel(line=number, declared_count=int(count_text), area_ha=area, fields=fields, kind=kind)
        limit = self.budget.per_feature
        if limit is not None and parcel.declared_count > limit:  # refused before its points are read
            raise ParcelError(
                f"{self.source}: line {number}: parcel {parcel.label} declares 界址点数 {parcel.declared_count},"
                f" more than the limit of {limit} vertices",
                vertices=parcel.declared_count,
                limit=limit,
            )
        return parcel

    def _point_line(self, number: int, parts: list[str], line: str) -> _Point:
        if len(parts) < 4:
            raise self.error(number, f"point line needs 点号,圈号,X,Y but reads {line!r}")
        if len(parts) > 4:
            self.notes.append(f"line {number}: point line has {len(parts)} fields; fields after Y ignored")
        name, ring_text, x_text, y_text = parts[:4]
        if not ring_text.isdigit() or int(ring_text) < 1:
            raise self.error(number, f"圈号 {ring_text!r} is not a ring number (1, 2, …)")
        for label, text in (("X (northing)", x_text), ("Y (easting)", y_text)):
            if not _NUMBER_RE.match(text):
                raise self.error(number, f"coordinate {label} {text!r} is not a number")
        return _Point(line=number, name=name, ring=int(ring_text), northing=float(x_text), easting=float(y_text))

    # -- per parcel -----------------------------------------------------------------------------

    def _finish(self, parcel: _Parcel, next_line: int | None) -> None:
        self.budget.add(len(parcel.points))
        points = parcel.points
        declared = parcel.declared_count
        if not points:
            raise self.error(parcel.line, f"parcel {parcel.label} declares 界址点数 {declared} but has no point lines")
        if parcel.kind == "point":
            if declared != len(points):
                self._count_error(parcel, next_line)
            self.parcels.append(parcel)
            return
        rings = parcel.rings = self._rings(parcel)
        n_lines = len(points)
        closed_form = sum(len(r.points) + 1 for r in rings)
        open_form = sum(len(r.points) for r in rings)
        if declared != n_lines:
            if parcel.kind == "polygon" and declared in (closed_form, open_form):
                self.notes.append(
                    f"line {parcel.line}: parcel {parcel.label} declares 界址点数 {declared}, {n_lines} point lines "
                    "follow; the difference is only the closing point(s)"
                )
            else:
                self._count_error(parcel, next_line)
        self.parcels.append(parcel)

    def _count_error(self, parcel: _Parcel, next_line: int | None) -> None:
        first, last = parcel.points[0].line, parcel.points[-1].line
        if next_line is None and len(parcel.points) < parcel.declared_count:
            tail = f"; the file ends at line {len(self.lines)} (truncated?)"
        else:
            tail = ""
        raise self.error(
            parcel.line,
            f"parcel {parcel.label} declares 界址点数 {parcel.declared_count} but {len(parcel.points)} point lines "
            f"follow (lines {first}–{last}){tail}",
            declared=parcel.declared_count,
            found=len(parcel.points),
        )

    def _rings(self, parcel: _Parcel) -> list[_Ring]:
        """Split a parcel's points into rings: a new ring starts when 圈号 changes or after a closing point."""
        rings: list[_Ring] = []
        current: _Ring | None = None
        closable = parcel.kind == "polygon"
        for point in parcel.points:
            if current is None or current.closed or point.ring != current.number:
                if current is not None and not current.closed:
                    self._note_unclosed(parcel, current)
                current = _Ring(point.ring, [point])
                rings.append(current)
                continue
            first = current.points[0]
            repeats_first = (point.northing, point.easting) == (first.northing, first.easting)
            if closable and repeats_first and len(current.points) > 1:
                current.closed = True  # the repeat is not kept: coordinates are the distinct sequence
            else:
                current.points.append(point)
        if current is not None and not current.closed:
            self._note_unclosed(parcel, current)
        minimum = {"polygon": 3, "line": 2}[parcel.kind]
        for ring in rings:
            distinct = {(p.northing, p.easting) for p in ring.points}
            if len(distinct) < minimum:
                raise self.error(
                    ring.line,
                    f"parcel {parcel.label}, 圈号 {ring.number}: ring has {len(distinct)} distinct points "
                    f"(at least {minimum} needed)",
                )
        return rings

    def _note_unclosed(self, parcel: _Parcel, ring: _Ring) -> None:
        if parcel.kind == "polygon":
            self.notes.append(
                f"line {ring.line}: parcel {parcel.label}, 圈号 {ring.number}: ring does not repeat its first point; "
                "closed automatically"
            )

    # -- geometry -------------------------------------------------------------------------------

    def geometry(self, parcel: _Parcel) -> BaseGeometry:
        if parcel.kind == "point":
            pts = [Point(p.easting, p.northing) for p in parcel.points]
            return pts[0] if len(pts) == 1 else MultiPoint(pts)
        rings = parcel.rings
        if parcel.kind == "line":
            lines = [LineString(r.coords()) for r in rings]
            return lines[0] if len(lines) == 1 else MultiLineString(lines)
        return self._polygon(parcel, rings)

    def _polygon(self, parcel: _Parcel, rings: list[_Ring]) -> BaseGeometry:
        parts: list[tuple[Polygon, list[list[tuple[float, float]]], list[tuple[float, float]]]] = []
        for ring in rings:
            coords = ring.coords()
            ring_polygon = Polygon(coords)
            if ring.number == 1 or not parts:
                if ring.number != 1:
                    self.notes.append(
                        f"line {ring.line}: parcel {parcel.label} starts with 圈号 {ring.number}; used as outer ring"
                    )
                parts.append((ring_polygon, [], coords))
                continue
            container = None
            disjoint = True
            for shell_polygon, holes, _ in parts:
                try:
                    if shell_polygon.covers(ring_polygon):
                        container = holes
                        break
                    if not shell_polygon.disjoint(ring_polygon):
                        disjoint = False
                except shapely.errors.GEOSException:
                    container = holes  # self-intersecting rings: keep the format's rule (圈号 ≥ 2 = hole)
                    break
            if container is not None:
                container.append(coords)
            elif disjoint:
                self.notes.append(
                    f"line {ring.line}: parcel {parcel.label}, 圈号 {ring.number} lies outside the outer ring; "
                    "taken as a further part of a multi-part parcel, not a hole"
                )
                parts.append((ring_polygon, [], coords))
            else:
                raise self.error(
                    ring.line,
                    f"parcel {parcel.label}, 圈号 {ring.number}: hole ring crosses the outer ring",
                )
        polygons = [Polygon(shell, holes) for _, holes, shell in parts]
        return polygons[0] if len(polygons) == 1 else MultiPolygon(polygons)


# ----------------------------------------------------------------------------------------------
# Header checks
# ----------------------------------------------------------------------------------------------


def _check_datum(reader: _Reader) -> None:
    line = reader.meta_lines.get("坐标系")
    value = reader.meta.get("坐标系", "").strip()
    if not value:
        raise reader.crs_error(line, "the header names no 坐标系; expected 2000国家大地坐标系 (CGCS2000)")
    key = re.sub(r"[\s_\-]", "", value).upper()
    cgcs2000 = (
        "CGCS2000" in key
        or "2000国家" in key
        or "国家2000" in key
        or key in ("2000坐标系", "2000大地坐标系")
        or "GEODETICCOORDINATESYSTEM2000" in key
    )
    if cgcs2000:
        return
    if "西安" in key or "XIAN" in key or "1980" in key or re.search(r"(?<!\d)80(?!\d)", key):
        datum = "西安80 (Xian 1980)"
    elif "北京" in key or "BEIJING" in key or "1954" in key or re.search(r"(?<!\d)54(?!\d)", key):
        datum = "北京54 (Beijing 1954)"
    else:
        datum = None
    if datum is not None:
        raise reader.crs_error(
            line,
            f"坐标系={value}: datum {datum} is not supported; convert the coordinates to 2000国家大地坐标系 (CGCS2000)",
            value=value,
        )
    raise reader.crs_error(line, f"坐标系={value} is not 2000国家大地坐标系 (CGCS2000)", value=value)


def _check_projection(reader: _Reader) -> None:
    units = reader.meta.get("计量单位")
    if units is None or not units.strip():
        reader.notes.append("header has no 计量单位; metres assumed")
    elif units.strip().upper() not in _UNIT_METRE:
        raise reader.error(
            reader.meta_lines.get("计量单位"), f"计量单位={units}: coordinates must be in 米 (metres)", value=units
        )
    band = reader.meta.get("几度分带")
    if band is None or not band.strip():
        reader.notes.append("header has no 几度分带; 3-degree zones assumed")
    else:
        width = re.sub(r"[\s度°带分]", "", band).replace("三", "3").replace("六", "6")
        if width == "6":
            raise reader.crs_error(
                reader.meta_lines.get("几度分带"),
                f"几度分带={band}: 6-degree Gauss-Krüger zones are not supported; use 3-degree zones",
                value=band,
            )
        if width != "3":
            raise reader.crs_error(reader.meta_lines.get("几度分带"), f"几度分带={band} is not 3", value=band)
    projection = reader.meta.get("投影类型")
    if projection is None or not projection.strip():
        reader.notes.append("header has no 投影类型; Gauss-Krüger assumed")
    else:
        key = projection.upper()
        if not any(word in key for word in ("高斯", "克吕格", "克里格", "GAUSS", "KRUGER", "KRÜGER")):
            raise reader.crs_error(
                reader.meta_lines.get("投影类型"), f"投影类型={projection} is not 高斯克吕格 (Gauss-Krüger)"
            )


def _header_zone(reader: _Reader) -> int | None:
    value = reader.meta.get("带号")
    if value is None or not value.strip():
        return None
    try:
        return parse_zone_header(value)
    except CRSError as exc:
        raise reader.crs_error(reader.meta_lines.get("带号"), exc.message, value=value) from exc


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------


def _object_array(geometries: list[BaseGeometry]) -> np.ndarray:
    array = np.empty(len(geometries), dtype=object)
    array[:] = geometries
    return array


def _check_line_count(data: bytes, limits: ReadLimits | None, source: str) -> None:
    """Refuse a file with more lines than any file within ``limits`` has: a point per line, a line per parcel."""
    if limits is None or limits.max_file_vertices is None:
        return
    allowed = limits.max_file_vertices + (limits.max_features or limits.max_file_vertices) + 1000
    lines = data.count(b"\n")
    if lines > allowed:
        raise FileLimitError(
            f"{source}: 文件有 {lines} 行，超过上传允许的 {limits.max_file_vertices} 个界址点 / the file has {lines}"
            f" lines, more than an upload of at most {limits.max_file_vertices} points can have",
            lines=lines,
            limit=limits.max_file_vertices,
        )


def read_boundary_txt(path: Path, *, limits: ReadLimits | None = None) -> SourceData:
    """Read a 国土 boundary-coordinate TXT file.

    Parameters
    ----------
    path : Path
        The TXT file (UTF-8 with or without BOM, or GBK/GB18030).
    limits : ReadLimits, optional
        Parcels, vertices per parcel and per file (uploads): a file with more lines than its limits allow is
        refused before it is decoded, a parcel line declaring too many points before its points are read, a
        parcel with too many point lines at the first one past the limit.

    Returns
    -------
    SourceData
        One geometry per parcel (x = easting, y = northing, in the file's Gauss-Krüger CRS),
        attributes :data:`ATTRIBUTE_COLUMNS`, every ``[属性描述]`` entry in ``meta``, and the CRS
        resolved from the header and the coordinates in ``resolved_crs`` (and ``crs``).  When the
        header gives no 带号 and the eastings carry no zone prefix the zone cannot be known:
        ``crs`` and ``resolved_crs`` stay ``None`` and the importer needs ``--crs``.

    Raises
    ------
    InputFileError
        Naming the file and line: unreadable file, missing ``[地块坐标]``, bad parcel or point
        lines, point count not matching 界址点数 (truncated file), rings with fewer than 3 distinct
        points, 计量单位 other than 米.
    EncodingDetectionError
        When the text is neither UTF-8 nor GBK/GB18030.
    CRSError
        坐标系 not CGCS2000 (西安80/北京54 are named), 6-degree zones, a 带号 that disagrees with the
        eastings' zone prefix, implausible coordinates.
    """
    source = path.name
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(f"{source}: cannot read the file ({exc.strerror or exc})", file=source) from exc
    _check_line_count(data, limits, source)
    text, encoding = decode_text(data, source=source)
    reader = _Reader(text, source, VertexBudget(limits, source))
    if limits is not None:
        limits.check_features(sum(1 for line in reader.lines if line.rstrip().endswith("@")), source)
    reader.parse()
    _check_datum(reader)
    _check_projection(reader)
    header_zone = _header_zone(reader)

    geometries: list[BaseGeometry] = []
    rows: list[dict[str, object]] = []
    for parcel in reader.parcels:
        geometry = reader.geometry(parcel)
        geometries.append(geometry)
        row: dict[str, object] = dict(parcel.fields)
        row["HEADER_AREA_HA"] = parcel.area_ha if parcel.area_ha is not None else math.nan
        row["JZDS"] = parcel.declared_count
        row["PLANAR_AREA_HA"] = math.nan
        row["AREA_DIFF_PCT"] = math.nan
        if parcel.kind == "polygon":
            computed_ha = geometry.area / 10_000
            row["PLANAR_AREA_HA"] = computed_ha
            if parcel.area_ha is None or parcel.area_ha <= 0:
                reader.notes.append(
                    f"line {parcel.line}: parcel {parcel.label} declares no area; computed {computed_ha:.4f} 公顷"
                )
            else:
                diff = (computed_ha - parcel.area_ha) / parcel.area_ha * 100
                row["AREA_DIFF_PCT"] = diff
                if abs(diff) > AREA_TOLERANCE_PCT:
                    reader.notes.append(
                        f"line {parcel.line}: parcel {parcel.label} declares {parcel.area_ha:.4f} 公顷 but its "
                        f"coordinates enclose {computed_ha:.4f} 公顷 (planar, {diff:+.2f}%)"
                    )
        rows.append(row)

    eastings = [p.easting for parcel in reader.parcels for p in parcel.points]
    northings = [p.northing for parcel in reader.parcels for p in parcel.points]
    bounds = (min(eastings), min(northings), max(eastings), max(northings))
    if max(abs(bounds[0]), abs(bounds[2])) <= 180 and max(abs(bounds[1]), abs(bounds[3])) <= 90:
        raise reader.crs_error(
            None,
            f"the header declares Gauss-Krüger metres but the coordinates look like degrees "
            f"(Y {bounds[0]} … {bounds[2]}, X {bounds[1]} … {bounds[3]})",
        )
    try:
        prefixes = {easting_zone_prefix(bounds[0]), easting_zone_prefix(bounds[2])}
        if header_zone is None and prefixes == {None}:
            resolved = None
            reader.notes.append(
                "the header gives no 带号 and the eastings carry no zone prefix: the Gauss-Krüger zone must be "
                "given with --crs (e.g. EPSG:4547 for central meridian 114°E)"
            )
        else:
            resolved = resolve_crs(None, bounds, header_zone=header_zone, allow_prefix_inference=True)
    except CRSError as exc:
        line = reader.meta_lines.get("带号") if header_zone is not None and "带号" in exc.message else None
        raise reader.crs_error(line, exc.message, **exc.details) from exc

    attributes = pd.DataFrame(rows, columns=ATTRIBUTE_COLUMNS)
    attributes["JZDS"] = attributes["JZDS"].astype("int64")
    return SourceData(
        geometries=_object_array(geometries),
        attributes=attributes,
        crs=resolved.crs if resolved is not None else None,
        source_name=source,
        format=FORMAT,
        encoding=encoding,
        resolved_crs=resolved,
        meta=dict(reader.meta),
        notes=reader.notes,
    )
