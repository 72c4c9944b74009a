// Pasted coordinates → a GeoJSON Polygon and its CRS. Accepted per line: "lon,lat" (CGCS2000 degrees),
// or Gauss-Krüger "X,Y" (X = northing, Y = easting with or without the zone prefix), optionally after a
// point name and a ring number as in the 界址点 format ("J1,1,X,Y"; ring 1 = outer, ≥ 2 = holes).
// Separators: comma, full-width comma, semicolon, spaces or tabs. Errors carry an i18n key and params.

export class CoordinateError extends Error {
  constructor(key, params = {}) {
    super(key);
    this.name = 'CoordinateError';
    this.key = key;
    this.params = params;
  }
}

const digits = (v) => String(Math.floor(Math.abs(v))).length;

function classifyGk(a, b, line) {
  const isNorthing = (v) => digits(v) === 7;
  const isEasting = (v) => digits(v) === 6 || digits(v) === 8;
  if (isNorthing(a) && isEasting(b)) return { northing: a, easting: b };
  if (isEasting(a) && isNorthing(b)) return { northing: b, easting: a };
  throw new CoordinateError('coords.err.gk', { line });
}

export function parseCoordinates(text, zone) {
  const rings = new Map();
  let kind = null;
  let prefixed = null;
  const lines = String(text || '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const clean = raw.replace(/[，、；]/g, ',').replace(/\u3000/g, ' ').trim();
    if (!clean || clean.startsWith('#') || clean.startsWith('[')) return;
    let tokens = clean.split(/[,;\s]+/).filter(Boolean);
    if (tokens.length && !/^[-+]?\d/.test(tokens[0])) tokens = tokens.slice(1); // a point name such as J1
    const numbers = tokens.map(Number);
    if (numbers.length < 2 || numbers.length > 3 || numbers.some((v) => !Number.isFinite(v))) {
      throw new CoordinateError('coords.err.line', { line, text: raw.trim().slice(0, 60) });
    }
    const ring = numbers.length === 3 ? numbers[0] : 1;
    if (!Number.isInteger(ring) || ring < 1) throw new CoordinateError('coords.err.line', { line, text: raw.trim().slice(0, 60) });
    const [a, b] = numbers.slice(-2);
    const thisKind = Math.abs(a) <= 180 && Math.abs(b) <= 180 ? 'lonlat' : 'gk';
    if (kind && kind !== thisKind) throw new CoordinateError('coords.err.mixed', { line });
    kind = thisKind;
    let point;
    if (kind === 'lonlat') {
      // China: longitude 73–136°E, latitude 3–54°N, so a swapped pair is recognisable
      point = a < 60 && b > 70 ? [b, a] : [a, b];
      if (point[0] < 73 || point[0] > 136 || point[1] < 3 || point[1] > 54) throw new CoordinateError('coords.err.outside', { line });
    } else {
      const { northing, easting } = classifyGk(a, b, line);
      const hasPrefix = digits(easting) === 8;
      if (prefixed !== null && prefixed !== hasPrefix) throw new CoordinateError('coords.err.mixedPrefix', { line });
      prefixed = hasPrefix;
      if (hasPrefix) {
        const z = Math.floor(easting / 1e6);
        if (z !== zone) throw new CoordinateError('coords.err.zone', { line, found: z, zone });
      }
      point = [easting, northing];
    }
    if (!rings.has(ring)) rings.set(ring, []);
    rings.get(ring).push(point);
  });
  if (!rings.size) throw new CoordinateError('coords.err.empty');
  const ordered = [...rings.keys()].sort((x, y) => x - y).map((k) => rings.get(k));
  const closed = ordered.map((pts, i) => {
    const distinct = new Set(pts.map((p) => p.join(','))).size;
    if (distinct < 3) throw new CoordinateError('coords.err.few', { ring: i + 1 });
    const [f, l] = [pts[0], pts[pts.length - 1]];
    return f[0] === l[0] && f[1] === l[1] ? pts : [...pts, f];
  });
  const crs = kind === 'lonlat' ? 'EPSG:4490' : `EPSG:${(prefixed ? 4513 : 4534) + zone - 25}`;
  return { geometry: { type: 'Polygon', coordinates: closed }, crs, kind, pointCount: closed.reduce((s, r) => s + r.length - 1, 0) };
}
