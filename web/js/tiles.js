// Feature layers drawn on canvas tiles in the catalogue styles: Mapbox vector tiles (.pbf) for the
// large layers, one GeoJSON download drawn per tile for the small ones. Both export cleanly to PNG.
import { VectorTile } from '@mapbox/vector-tile';
import { PbfReader } from 'pbf';
import { api, isAbort, urls } from './api.js';
import { compileStyle, drawFeature } from './style.js';
import { L } from './vendor.js';

const MVT_TYPES = { 1: 'point', 2: 'line', 3: 'polygon' };

function tileTemplate(layer) {
  return layer.tiles || urls.tile(layer.code, '{z}', '{x}', '{y}');
}

function fillTemplate(template, coords) {
  return template.replace('{z}', coords.z).replace('{x}', coords.x).replace('{y}', coords.y);
}

/** MVT source: features of one tile in tile pixels. */
function mvtSource(layer) {
  const template = tileTemplate(layer);
  return {
    async tile(coords, size, signal) {
      const buffer = await api.buffer(fillTemplate(template, coords), { signal });
      if (!buffer || buffer.byteLength === 0) return [];
      const tile = new VectorTile(new PbfReader(buffer));
      const vt = tile.layers[layer.code] || Object.values(tile.layers)[0];
      if (!vt) return [];
      const scale = size / vt.extent;
      const out = [];
      for (let i = 0; i < vt.length; i++) {
        const f = vt.feature(i);
        const rings = f.loadGeometry().map((ring) => ring.map((p) => [p.x * scale, p.y * scale]));
        out.push({ type: MVT_TYPES[f.type] || 'polygon', rings, properties: f.properties });
      }
      return out;
    },
  };
}

function ringsOf(geometry) {
  if (!geometry) return [];
  const c = geometry.coordinates;
  switch (geometry.type) {
    case 'Point': return [[c]];
    case 'MultiPoint': return [c];
    case 'LineString': return [c];
    case 'MultiLineString': return c;
    case 'Polygon': return c;
    case 'MultiPolygon': return c.flat();
    case 'GeometryCollection': return geometry.geometries.flatMap(ringsOf);
    default: return [];
  }
}

function typeOf(geometry) {
  const t = geometry?.type || '';
  if (t.includes('Point')) return 'point';
  if (t.includes('LineString')) return 'line';
  return 'polygon';
}

/** GeoJSON source: the whole (small) layer downloaded once, projected per tile. */
export function geojsonSource(loadCollection) {
  let loaded = null;
  const load = () => {
    if (!loaded) {
      loaded = loadCollection().then((fc) =>
        (fc.features || []).filter((f) => f.geometry).map((f) => {
          const rings = ringsOf(f.geometry);
          let minx = Infinity, miny = Infinity, maxx = -Infinity, maxy = -Infinity;
          for (const ring of rings) for (const [x, y] of ring) {
            if (x < minx) minx = x;
            if (x > maxx) maxx = x;
            if (y < miny) miny = y;
            if (y > maxy) maxy = y;
          }
          return { type: typeOf(f.geometry), rings, properties: { ...(f.properties || {}), id: f.id ?? f.properties?.id }, bbox: [minx, miny, maxx, maxy] };
        }),
      );
      loaded.catch(() => {
        loaded = null; // try again on the next tile
      });
    }
    return loaded;
  };
  return {
    load,
    async tile(coords, size) {
      const features = await load();
      const crs = L.CRS.EPSG3857;
      const margin = 12; // pixels, for markers and thick strokes near the tile edge
      const nw = crs.pointToLatLng(L.point(coords.x * size - margin, coords.y * size - margin), coords.z);
      const se = crs.pointToLatLng(L.point((coords.x + 1) * size + margin, (coords.y + 1) * size + margin), coords.z);
      const ox = coords.x * size;
      const oy = coords.y * size;
      const out = [];
      for (const f of features) {
        const [x0, y0, x1, y1] = f.bbox;
        if (x1 < nw.lng || x0 > se.lng || y1 < se.lat || y0 > nw.lat) continue;
        const rings = f.rings.map((ring) =>
          ring.map(([lon, lat]) => {
            const p = crs.latLngToPoint(L.latLng(lat, lon), coords.z);
            return [p.x - ox, p.y - oy];
          }),
        );
        out.push({ type: f.type, rings, properties: f.properties });
      }
      return out;
    },
  };
}

export const FeatureTileLayer = L.GridLayer.extend({
  options: { updateWhenZooming: false, updateWhenIdle: true, keepBuffer: 1, pane: 'features' },

  initialize(source, style, options) {
    L.GridLayer.prototype.initialize.call(this, options);
    this._source = source;
    this._styleFn = compileStyle(style);
    this._aborts = new Map();
    this.on('tileunload', (e) => {
      const key = this._tileCoordsToKey(e.coords);
      const ctrl = this._aborts.get(key);
      if (ctrl) ctrl.abort();
      this._aborts.delete(key);
    });
  },

  onAdd(map) {
    L.GridLayer.prototype.onAdd.call(this, map);
    if (this.options.code) this.getContainer().dataset.layer = this.options.code;
  },

  createTile(coords, done) {
    const size = this.getTileSize();
    const ratio = window.devicePixelRatio || 1;
    const canvas = L.DomUtil.create('canvas', 'gis-tile');
    canvas.width = size.x * ratio;
    canvas.height = size.y * ratio;
    canvas.style.width = `${size.x}px`;
    canvas.style.height = `${size.y}px`;
    const key = this._tileCoordsToKey(coords);
    const ctrl = new AbortController();
    this._aborts.set(key, ctrl);
    this._source
      .tile(coords, size.x, ctrl.signal)
      .then((features) => {
        const ctx = canvas.getContext('2d');
        ctx.scale(ratio, ratio);
        const order = { polygon: 0, line: 1, point: 2 };
        features.sort((a, b) => order[a.type] - order[b.type]);
        // thinner outlines when zoomed out, so dense layers do not turn into a mesh of strokes
        const thin = coords.z >= 14 ? 1 : coords.z >= 12 ? 0.75 : 0.5;
        for (const f of features) drawFeature(ctx, f.type, f.rings, this._styleFn(f.properties), thin);
        canvas.dataset.features = String(features.length);
        if (features.length && !window.gisFirstTiles) {
          // first map paint: navigation start → the first tile with features drawn
          window.gisFirstTiles = performance.now();
          performance.mark('gis-first-tiles');
        }
        this._aborts.delete(key);
        done(null, canvas);
      })
      .catch((err) => {
        this._aborts.delete(key);
        canvas.dataset.features = '0';
        if (isAbort(err)) return;
        canvas.dataset.error = err.message;
        this.fire('featureerror', { error: err });
        done(null, canvas);
      });
    return canvas;
  },
});

/** The map layer of one catalogue layer, as its map-config says it is served. */
export function featureLayer(layer, options = {}) {
  const source = layer.serve === 'mvt'
    ? mvtSource(layer)
    : geojsonSource(() => api.get(layer.geojson || urls.features(layer.code)));
  const tileLayer = new FeatureTileLayer(source, layer.style, {
    zIndex: layer.order,
    code: layer.code,
    minZoom: layer.minzoom || 0,
    maxNativeZoom: layer.serve === 'mvt' ? Math.min(layer.maxzoom || 22, 22) : undefined,
    ...options,
  });
  tileLayer.source = source;
  return tileLayer;
}
