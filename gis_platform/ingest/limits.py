"""How much of an untrusted file a reader takes: features, vertices per feature and per file, DXF entities.

The readers count while they read and stop at the first count past a limit, so a hostile file costs no more
than its limit: a 1,000,000-point boundary TXT is refused after the first parcel past the vertex limit, a DXF of
200,000 polylines before ezdxf parses it, a HATCH spline after the vertices a parcel may have. ``None`` means no
limit: layer imports by the operator (``gis-platform import``) read everything, as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, TypeVar

from ..errors import FileLimitError, ParcelError

if TYPE_CHECKING:
    from ..settings import Settings

T = TypeVar("T")


@dataclass(frozen=True)
class ReadLimits:
    """Limits of one read; ``None``: unlimited."""

    max_features: int | None = None
    """Features (parcels) in the file."""
    max_feature_vertices: int | None = None
    """Vertices of one feature, arcs and splines counted as the points they are flattened to."""
    max_file_vertices: int | None = None
    """Vertices of every feature together."""
    max_dxf_entities: int | None = None
    """Entities in a DXF's ENTITIES section, counted in the file's text before it is parsed."""
    features_hint: str = ""
    """Appended to the too-many-features message (where to go instead, e.g. the batch check)."""

    @classmethod
    def for_parcels(cls, settings: Settings, *, max_features: int | None = None, hint: str = "") -> ReadLimits:
        """The limits of an uploaded parcel file (a check, an inspection, a batch file)."""
        return cls(
            max_features=settings.max_parcels_per_request if max_features is None else max_features,
            max_feature_vertices=settings.max_parcel_vertices,
            max_file_vertices=settings.max_file_vertices,
            max_dxf_entities=settings.max_dxf_entities,
            features_hint=hint,
        )

    def check_features(self, count: int, source: str, *, at_least: bool = False) -> None:
        """Refuse ``count`` features (``at_least``: counting stopped there) when past :attr:`max_features`."""
        if self.max_features is not None and count > self.max_features:
            more = "more than " if at_least else ""
            raise ParcelError(
                f"{source}: {more}{count} parcels, more than the limit of {self.max_features}{self.features_hint}",
                parcels=count,
                limit=self.max_features,
            )

    def check_dxf_entities(self, count: int, source: str) -> None:
        if self.max_dxf_entities is not None and count > self.max_dxf_entities:
            raise FileLimitError(
                f"{source}: DXF 模型空间有 {count} 个图元，超过上限 {self.max_dxf_entities} / the drawing's model space"
                f" holds {count} entities, more than the limit of {self.max_dxf_entities}; keep only the parcel"
                " outlines (the red-line layer) in the file",
                entities=count,
                limit=self.max_dxf_entities,
            )


class VertexBudget:
    """Counts the vertices a reader produces, per feature and for the whole file, and stops at a limit."""

    def __init__(self, limits: ReadLimits | None, source: str) -> None:
        self.limits = limits or ReadLimits()
        self.source = source
        self.total = 0

    @property
    def per_feature(self) -> int | None:
        return self.limits.max_feature_vertices

    def feature(self, vertices: int, label: str) -> None:
        """Charge one whole feature of ``vertices`` (``label`` names it in the message)."""
        limit = self.limits.max_feature_vertices
        if limit is not None and vertices > limit:
            raise ParcelError(
                f"{self.source}: {label}: {vertices} vertices, more than the limit of {limit}",
                vertices=vertices,
                limit=limit,
            )
        self.add(vertices)

    def add(self, vertices: int) -> None:
        """Charge ``vertices`` to the file."""
        self.total += vertices
        limit = self.limits.max_file_vertices
        if limit is not None and self.total > limit:
            raise FileLimitError(
                f"{self.source}: 文件顶点数超过上限 {limit} / the file holds more than {limit} vertices"
                " (the limit of one upload); split it or simplify the parcels",
                vertices_read=self.total,
                limit=limit,
            )

    def take(self, points: Iterable[T], label: str) -> list[T]:
        """The points of one generated run (a flattened arc or spline), at most one feature's worth."""
        limit = self.limits.max_feature_vertices
        if limit is None:
            return list(points)
        taken = list(islice(points, limit + 1))
        if len(taken) > limit:
            raise ParcelError(
                f"{self.source}: {label}: more than {limit} vertices once its curves are flattened, more than the"
                f" limit of {limit}",
                limit=limit,
            )
        return taken

    def counted(self, items: Iterable[T], label: str) -> Iterator[T]:
        """``items`` passed through, stopping once a feature's worth is past."""
        limit = self.limits.max_feature_vertices
        for n, item in enumerate(items, start=1):
            if limit is not None and n > limit:
                raise ParcelError(
                    f"{self.source}: {label}: more than {limit} vertices, more than the limit of {limit}", limit=limit
                )
            yield item
