"""The format-neutral result every input reader returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy
import pandas
import pyproj

from gis_platform.crs import ResolvedCRS


@dataclass
class SourceData:
    """Geometries and attributes read from one input file, before CRS handling and repair.

    Attributes
    ----------
    geometries : numpy.ndarray
        Object array of shapely geometries in the file's own CRS, x = easting/longitude,
        y = northing/latitude (whatever axis order the CRS officially has).
    attributes : pandas.DataFrame
        One row per geometry, same order.
    crs : pyproj.CRS or None
        The CRS the file declares, ``None`` when it declares none.
    source_name : str
        File name as the user gave it.
    format : str
        ``"boundary-txt"``, ``"dxf"``, ``"shapefile"``, ``"geojson"`` or ``"gpkg"``.
    encoding : str or None
        Text encoding the reader decoded the file (or its attributes) with.
    resolved_crs : ResolvedCRS or None
        Set by readers that resolve the CRS themselves (the boundary TXT, whose header declares it).
    meta : dict of str to str
        Header/metadata values of the file (for the TXT: every ``[属性描述]`` entry).
    notes : list of str
        Remarks for the import report (assumptions, tolerated irregularities).
    """

    geometries: numpy.ndarray
    attributes: pandas.DataFrame
    crs: pyproj.CRS | None
    source_name: str
    format: str
    encoding: str | None = None
    resolved_crs: ResolvedCRS | None = None
    meta: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
