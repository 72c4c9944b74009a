// CGCS2000 geodesy in the browser: Gauss-Krüger coordinates (proj4js) and ellipsoidal length/area on
// GRS80 (GeographicLib's geodesic polygon area, the algorithm of pyproj.Geod and PostGIS geography).
import { geodesic, proj4 } from './vendor.js';

export const GRS80 = { a: 6378137, f: 1 / 298.257222101 };
const geod = new geodesic.Geodesic.Geodesic(GRS80.a, GRS80.f);

/** 1 公顷 = 10,000 m²; 1 亩 = 10,000/15 m² exactly (亩 = m² × 15 / 10,000). */
export function areaFigures(m2) {
  return {
    m2: Math.round(m2 * 100) / 100,
    hectare: Math.round(m2 / 10000 * 10000) / 10000,
    mu: Math.round((m2 * 15) / 10000 * 100) / 100,
  };
}

/** Ellipsoidal area (m², absolute) of one ring of [lon, lat] (closed or not). */
export function ringArea(ring) {
  const poly = geod.Polygon(false);
  const pts = ring.length > 1 && ring[0][0] === ring[ring.length - 1][0] && ring[0][1] === ring[ring.length - 1][1]
    ? ring.slice(0, -1)
    : ring;
  for (const [lon, lat] of pts) poly.AddPoint(lat, lon);
  const r = poly.Compute(false, true);
  return Math.abs(r.area);
}

/** Ellipsoidal area of a polygon: outer ring minus holes. */
export function polygonArea(rings) {
  return rings.reduce((sum, ring, i) => sum + (i === 0 ? 1 : -1) * ringArea(ring), 0);
}

/** Geodesic length (m) of a line of [lon, lat]. */
export function lineLength(points) {
  let total = 0;
  for (let i = 1; i < points.length; i++) {
    const r = geod.Inverse(points[i - 1][1], points[i - 1][0], points[i][1], points[i][0], geodesic.Geodesic.DISTANCE);
    total += r.s12;
  }
  return total;
}

/** A CGCS2000 3-degree Gauss-Krüger projection of `zone` (central meridian 3 × zone, no zone prefix). */
export function gkProjection(zone) {
  const def = `+proj=tmerc +lat_0=0 +lon_0=${3 * zone} +k=1 +x_0=500000 +y_0=0 +ellps=GRS80 +units=m +no_defs`;
  const converter = proj4('+proj=longlat +ellps=GRS80 +no_defs', def); // CGCS2000 lon/lat
  return {
    zone,
    def,
    /** lon/lat → {x: northing, y: easting} in the survey convention (X north, Y east). */
    forward(lon, lat) {
      const [e, n] = converter.forward([lon, lat]);
      return { x: n, y: e };
    },
    /** easting/northing (no prefix) → [lon, lat]. */
    inverse(easting, northing) {
      return converter.inverse([easting, northing]);
    },
  };
}
