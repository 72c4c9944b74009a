"""The report map: the parcel and its overlaps, projected for an inline SVG (no tiles, no network).

Coordinates in the check document are CGCS2000 lon/lat (EPSG:4490).  The map uses a local
equirectangular projection about the centre of everything drawn, with the metres per degree of the
GRS80 ellipsoid at that latitude (meridian radius M for latitude, prime-vertical radius N·cos φ for
longitude): north is up, shapes keep their proportions, and the scale bar is true at the centre.
The template turns :class:`ReportMap` into SVG; Jinja2 escapes every text it carries.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gis_platform.catalog import Catalog

GRS80_A: Final[float] = 6_378_137.0
GRS80_F: Final[float] = 1 / 298.257222101
_E2: Final[float] = GRS80_F * (2 - GRS80_F)

#: Bottom to top: the status layer first, the red lines last, so the strictest layer stays visible.
_ROLE_ORDER: Final[tuple[str, ...]] = (
    "land_survey",
    "zoning",
    "township_plan",
    "hazard_zone",
    "other",
    "urban_boundary",
    "red_line_ecology",
    "red_line_farmland",
    "hazard_point",
)
_FALLBACK_STYLE: Final[dict[str, Any]] = {
    "fill": "#B0B0B0",
    "fill_opacity": 0.5,
    "stroke": "#606060",
    "stroke_width": 1.0,
    "dash": None,
    "pattern": "solid",
    "marker_color": "#606060",
    "marker_radius": 5.0,
}
PARCEL_COLOUR: Final[str] = "#E60000"


def metres_per_degree(lat_deg: float) -> tuple[float, float]:
    """(metres per degree of longitude, metres per degree of latitude) on GRS80 at ``lat_deg``."""
    phi = math.radians(lat_deg)
    w = math.sqrt(1 - _E2 * math.sin(phi) ** 2)
    meridian = GRS80_A * (1 - _E2) / w**3
    prime_vertical = GRS80_A / w
    return math.radians(1) * prime_vertical * math.cos(phi), math.radians(1) * meridian


def nice_length(target_m: float) -> float:
    """The largest 1·10ⁿ, 2·10ⁿ or 5·10ⁿ metres not above ``target_m``."""
    if target_m <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(target_m))
    return max(step * power for step in (1, 2, 5) if step * power <= target_m)


def length_label(metres: float) -> str:
    if metres >= 1000:
        return f"{metres / 1000:g} 千米"
    return f"{metres:g} 米"


@dataclass(frozen=True)
class Shape:
    """One drawn geometry: ``d`` for areas and lines, ``points`` (x, y) for point markers."""

    layer_code: str
    title: str
    d: str = ""
    points: tuple[tuple[float, float], ...] = ()
    fill: str = "none"
    fill_opacity: float = 0.0
    stroke: str = "#000000"
    stroke_width: float = 1.0
    dash: str | None = None
    pattern_id: str | None = None
    radius: float = 5.0


@dataclass(frozen=True)
class LegendEntry:
    label: str
    kind: str  # parcel | area | line | point | minor
    fill: str = "none"
    fill_opacity: float = 0.0
    stroke: str = "#000000"
    stroke_width: float = 1.0
    dash: str | None = None
    hatch: bool = False


@dataclass(frozen=True)
class ScaleBar:
    x: float
    y: float
    length_px: float
    label: str
    half_label: str


@dataclass
class ReportMap:
    """Everything the template needs to draw the map (pixel coordinates, y down)."""

    width: float
    height: float
    parcel_d: str = ""
    shapes: list[Shape] = field(default_factory=list)
    minor_marks: list[tuple[float, float, str]] = field(default_factory=list)
    patterns: dict[str, dict[str, Any]] = field(default_factory=dict)
    legend: list[LegendEntry] = field(default_factory=list)
    scale_bar: ScaleBar | None = None
    centre_lat: float = 0.0
    extent_m: tuple[float, float] = (0.0, 0.0)


def _positions(geometry: dict[str, Any] | None) -> Iterator[tuple[float, float]]:
    """Every coordinate pair of a GeoJSON geometry."""
    if not geometry:
        return
    if geometry.get("type") == "GeometryCollection":
        for part in geometry.get("geometries") or []:
            yield from _positions(part)
        return

    def walk(node: Any) -> Iterator[tuple[float, float]]:
        if isinstance(node, (list, tuple)) and node and isinstance(node[0], (int, float)):
            yield float(node[0]), float(node[1])
        elif isinstance(node, (list, tuple)):
            for child in node:
                yield from walk(child)

    yield from walk(geometry.get("coordinates"))


class _Projector:
    """lon/lat → SVG pixels for one map frame."""

    def __init__(self, bbox: tuple[float, float, float, float], width: float, height: float, margin: float) -> None:
        minx, miny, maxx, maxy = bbox
        self.lon0, self.lat0 = (minx + maxx) / 2, (miny + maxy) / 2
        self.mx, self.my = metres_per_degree(self.lat0)
        span_x = max((maxx - minx) * self.mx, 20.0) * 1.12
        span_y = max((maxy - miny) * self.my, 20.0) * 1.12
        self.scale = min((width - 2 * margin) / span_x, (height - 2 * margin) / span_y)  # px per metre
        self.cx, self.cy = width / 2, height / 2
        self.extent_m = (width / self.scale, height / self.scale)

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return (
            self.cx + (lon - self.lon0) * self.mx * self.scale,
            self.cy - (lat - self.lat0) * self.my * self.scale,
        )

    def ring(self, ring: Sequence[Any]) -> str:
        pts = [self.xy(float(p[0]), float(p[1])) for p in ring]
        if not pts:
            return ""
        return "M" + "L".join(f"{x:.2f},{y:.2f}" for x, y in pts) + "Z"

    def line(self, line: Sequence[Any]) -> str:
        pts = [self.xy(float(p[0]), float(p[1])) for p in line]
        return ("M" + "L".join(f"{x:.2f},{y:.2f}" for x, y in pts)) if pts else ""

    def path(self, geometry: dict[str, Any] | None) -> tuple[str, str, tuple[tuple[float, float], ...]]:
        """(area path, line path, points) of a GeoJSON geometry."""
        area: list[str] = []
        lines: list[str] = []
        points: list[tuple[float, float]] = []
        self._collect(geometry, area, lines, points)
        return "".join(area), "".join(lines), tuple(points)

    def _collect(
        self, geometry: dict[str, Any] | None, area: list[str], lines: list[str], points: list[tuple[float, float]]
    ) -> None:
        if not geometry:
            return
        kind, coords = geometry.get("type"), geometry.get("coordinates") or []
        if kind == "Polygon":
            area.extend(self.ring(r) for r in coords)
        elif kind == "MultiPolygon":
            area.extend(self.ring(r) for polygon in coords for r in polygon)
        elif kind == "LineString":
            lines.append(self.line(coords))
        elif kind == "MultiLineString":
            lines.extend(self.line(c) for c in coords)
        elif kind == "Point" and coords:
            points.append(self.xy(float(coords[0]), float(coords[1])))
        elif kind == "MultiPoint":
            points.extend(self.xy(float(p[0]), float(p[1])) for p in coords)
        elif kind == "GeometryCollection":
            for part in geometry.get("geometries") or []:
                self._collect(part, area, lines, points)


def _feature_style(catalog: Catalog, code: str, attributes: dict[str, Any]) -> dict[str, Any]:
    if not catalog.has_layer(code):
        return dict(_FALLBACK_STYLE)
    style = catalog.layer(code).style
    value = None
    if style.categorized is not None:
        raw = attributes.get(style.categorized.field)
        value = None if raw is None else str(raw)
    resolved = style.resolve(value)
    return {k: (_FALLBACK_STYLE[k] if v is None and k in ("fill", "marker_radius") else v) for k, v in resolved.items()}


def _draw_order(layer: dict[str, Any]) -> int:
    role = layer.get("role") or "other"
    return _ROLE_ORDER.index(role) if role in _ROLE_ORDER else _ROLE_ORDER.index("other")


def build_map(check: dict[str, Any], catalog: Catalog, width: float = 720.0, height: float = 460.0) -> ReportMap:
    """The map model of a stored check document: parcel outline, overlap polygons, legend, scale bar."""
    parcel_geometry = (check.get("parcel") or {}).get("geometry")
    layers = sorted(check.get("layers") or [], key=_draw_order)
    coords = list(_positions(parcel_geometry))
    for layer in layers:
        for feature in layer.get("features") or []:
            coords.extend(_positions(feature.get("geometry")))
    result = ReportMap(width=width, height=height)
    if not coords:
        return result
    lons, lats = [c[0] for c in coords], [c[1] for c in coords]
    projector = _Projector((min(lons), min(lats), max(lons), max(lats)), width, height, margin=28.0)
    result.centre_lat, result.extent_m = projector.lat0, projector.extent_m
    result.parcel_d = projector.path(parcel_geometry)[0]
    result.legend.append(LegendEntry("拟用地地块（红线）", "parcel", stroke=PARCEL_COLOUR, stroke_width=2.2))
    for layer in layers:
        _add_layer(result, projector, catalog, layer)
    if result.minor_marks:
        result.legend.append(LegendEntry("微小压盖位置", "minor", stroke="#333333", stroke_width=1.2, dash="3 2"))
    bar_m = nice_length(projector.extent_m[0] / 4)
    result.scale_bar = ScaleBar(
        x=18.0,
        y=height - 22.0,
        length_px=bar_m * projector.scale,
        label=length_label(bar_m),
        half_label=length_label(bar_m / 2),
    )
    return result


def _add_layer(result: ReportMap, projector: _Projector, catalog: Catalog, layer: dict[str, Any]) -> None:
    code = str(layer.get("code") or "")
    name = str(layer.get("name_zh") or code)
    seen_legend: set[tuple[str, str | None]] = set()
    for feature in layer.get("features") or []:
        attributes = feature.get("attributes") or {}
        style = _feature_style(catalog, code, attributes)
        area_d, line_d, points = projector.path(feature.get("geometry"))
        title = f"{name} {feature.get('feature_id') or ''}".strip()
        hatch = style["pattern"] == "hatch"
        pattern_id = None
        if hatch and area_d:
            pattern_id = f"hatch-{code}-{len(result.patterns)}"
            result.patterns[pattern_id] = {
                "fill": style["fill"],
                "opacity": style["fill_opacity"],
                "line": style["stroke"],
            }
        fill_opacity = 0.0 if style["pattern"] == "none" else float(style["fill_opacity"])
        common = {"layer_code": code, "title": title, "stroke": style["stroke"], "dash": style["dash"]}
        if area_d:
            result.shapes.append(
                Shape(
                    d=area_d,
                    fill=style["fill"],
                    fill_opacity=fill_opacity,
                    stroke_width=float(style["stroke_width"]),
                    pattern_id=pattern_id,
                    **common,
                )
            )
        if line_d:
            result.shapes.append(Shape(d=line_d, stroke_width=max(float(style["stroke_width"]), 1.5), **common))
        if points:
            marker = style.get("marker_color") or style["fill"]
            radius = float(style.get("marker_radius") or 5.0)
            result.shapes.append(Shape(points=points, fill=marker, fill_opacity=1.0, radius=radius, **common))
        if feature.get("minor"):
            xs = list(_positions(feature.get("geometry")))
            if xs:
                x, y = projector.xy(sum(p[0] for p in xs) / len(xs), sum(p[1] for p in xs) / len(xs))
                result.minor_marks.append((x, y, title))
        category = style.get("label_zh")
        key = (code, category)
        if key in seen_legend or not (area_d or line_d or points):
            continue
        seen_legend.add(key)
        kind = "area" if area_d else "line" if line_d else "point"
        result.legend.append(
            LegendEntry(
                label=f"{name}：{category}" if category else name,
                kind=kind,
                fill=(style.get("marker_color") or style["fill"]) if kind == "point" else style["fill"],
                fill_opacity=1.0 if kind == "point" else fill_opacity,
                stroke=style["stroke"],
                stroke_width=float(style["stroke_width"]),
                dash=style["dash"],
                hatch=hatch,
            )
        )
