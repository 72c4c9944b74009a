// map-config (GET /api/v1/map-config) merged with the catalogue (GET /api/v1/layers): one normalised
// description of the county, its Gauss-Krüger zone and the layer tree, tolerant of the exact JSON shape.

export const GROUPS = [
  { key: '现状', name_zh: '现状', name_en: 'Status quo' },
  { key: '规划', name_zh: '规划', name_en: 'Plans' },
  { key: '管理', name_zh: '管理', name_en: 'Management' },
];

function first(...values) {
  return values.find((v) => v !== undefined && v !== null);
}

function bboxOf(raw) {
  const b = first(raw?.county?.bbox, raw?.bbox, raw?.county?.extent, raw?.extent);
  if (Array.isArray(b) && b.length === 4 && b.every(Number.isFinite)) return b.map(Number);
  if (b && typeof b === 'object' && 'minx' in b) return [b.minx, b.miny, b.maxx, b.maxy].map(Number);
  return null;
}

function centreOf(raw, bbox) {
  const c = first(raw?.county?.center, raw?.county?.centre, raw?.center, raw?.centre);
  if (Array.isArray(c) && c.length >= 2) return [Number(c[0]), Number(c[1])];
  if (c && typeof c === 'object' && 'lon' in c) return [Number(c.lon), Number(c.lat)];
  return bbox ? [(bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2] : [114, 34.5];
}

function gkOf(raw, centre) {
  const crs = first(raw?.crs, raw?.gk, raw?.projection, {});
  const zone = Number(first(crs.gk_zone, crs.zone, raw?.gk_zone, raw?.county?.gk_zone, Math.floor(centre[0] / 3 + 0.5)));
  const epsg = Number(first(crs.gk_epsg, crs.epsg, crs.gk_epsg_cm, raw?.gk_epsg, 4534 + zone - 25));
  const epsgPrefixed = Number(first(crs.gk_epsg_prefixed, crs.epsg_prefixed, 4513 + zone - 25));
  const cm = Number(first(crs.gk_central_meridian, crs.central_meridian, crs.lon_0, 3 * zone));
  return { zone, epsg, epsgPrefixed, cm };
}

/** [{key, layers:[rawLayer]}] from the shapes a layer tree may come in. */
function rawGroups(raw) {
  const tree = first(raw?.groups, raw?.layer_tree, raw?.tree, raw?.layers, []);
  if (Array.isArray(tree) && tree.length && Array.isArray(tree[0]?.layers)) {
    return tree.map((g) => ({ key: first(g.key, g.group, g.name_zh, g.name), meta: g, layers: g.layers }));
  }
  if (Array.isArray(tree)) {
    const byGroup = new Map();
    for (const layer of tree) {
      const key = layer.group || '现状';
      if (!byGroup.has(key)) byGroup.set(key, []);
      byGroup.get(key).push(layer);
    }
    return [...byGroup].map(([key, layers]) => ({ key, meta: {}, layers }));
  }
  if (tree && typeof tree === 'object') {
    return Object.entries(tree).map(([key, layers]) => ({ key, meta: {}, layers: Array.isArray(layers) ? layers : layers.layers || [] }));
  }
  return [];
}

function legendOf(layer, style) {
  const given = first(layer.legend, layer.legend_classes, layer.classes);
  if (Array.isArray(given) && given.length) {
    return given.map((c) => ({ ...style, ...c, categorized: undefined, fill_opacity: first(c.fill_opacity, style.fill_opacity) }));
  }
  const cats = style?.categorized?.categories;
  if (Array.isArray(cats) && cats.length) {
    return cats.map((c) => ({ ...style, ...c, categorized: undefined, fill_opacity: first(c.fill_opacity, style.fill_opacity) }));
  }
  return [{ ...style, categorized: undefined, label_zh: layer.name_zh, label_en: layer.name_en }];
}

function drawOrder(layer) {
  if (Number.isFinite(layer.z_index)) return layer.z_index;
  if (layer.geometry_type === 'point') return 900;
  if (layer.geometry_type === 'line') return 800;
  if (layer.role === 'township_boundary') return 700;
  return Math.round(600 - 600 * Number(layer.style?.fill_opacity ?? 0.5));
}

const DEFAULT_VISIBLE_ROLES = new Set(['township_boundary', 'red_line_farmland', 'red_line_ecology', 'urban_boundary']);

export function normaliseConfig(raw, catalogue) {
  const catalogueByCode = new Map((catalogue || []).map((l) => [l.code, l]));
  const bbox = bboxOf(raw);
  const centre = centreOf(raw, bbox);
  const layers = new Map();
  const groups = [];
  for (const g of rawGroups(raw)) {
    const known = GROUPS.find((x) => x.key === g.key || x.name_zh === g.key || x.name_en === g.key);
    const group = {
      key: g.key,
      name_zh: first(g.meta.name_zh, known?.name_zh, g.key),
      name_en: first(g.meta.name_en, known?.name_en, g.key),
      layers: [],
    };
    for (const item of g.layers) {
      const entry = typeof item === 'string' ? { code: item } : item;
      const cat = catalogueByCode.get(entry.code) || {};
      const merged = { ...cat, ...entry };
      const style = first(entry.style, cat.style, {});
      const version = first(entry.current_version, entry.version, cat.current_version);
      const layer = {
        ...merged,
        group: group.key,
        style,
        fields: first(cat.fields, entry.fields, []),
        geometry_type: first(entry.geometry_type, entry.geometry, cat.geometry_type, 'polygon'),
        serve: String(first(entry.served_as, entry.serve, entry.source, 'geojson')).toLowerCase() === 'mvt' ? 'mvt' : 'geojson',
        tiles: first(entry.tiles, entry.tile_url, entry.tiles_url, null),
        geojson: first(entry.geojson, entry.geojson_url, entry.features_url, null),
        minzoom: first(entry.minzoom, entry.min_zoom, 0),
        maxzoom: first(entry.maxzoom, entry.max_zoom, 22),
        version: version && typeof version === 'object' ? version : version ? { version_no: version } : null,
        hasData: version !== null && version !== undefined && first(entry.has_data, true) !== false,
      };
      layer.legend = legendOf(layer, style);
      layer.visible = first(entry.visible, entry.default_visible, entry.on, DEFAULT_VISIBLE_ROLES.has(layer.role));
      layer.order = drawOrder(layer);
      layers.set(layer.code, layer);
      group.layers.push(layer);
    }
    groups.push(group);
  }
  groups.sort((a, b) => indexOfGroup(a.key) - indexOfGroup(b.key));
  const basemapRaw = first(raw?.basemap, raw?.online_basemap, null);
  const basemap = basemapRaw && basemapRaw.url ? { url: basemapRaw.url, attribution: basemapRaw.attribution || '' } : null;
  const hill = first(raw?.hillshade, null);
  const hillOn = hill === true || (hill && typeof hill === 'object' && hill.enabled !== false && (hill.enabled || hill.url));
  const hillshade = hillOn ? { ...(typeof hill === 'object' ? hill : {}), url: (typeof hill === 'object' && hill.url) || '/tiles/hillshade/{z}/{x}/{y}.png' } : null;
  return {
    raw,
    county: {
      name_zh: first(raw?.county?.name_zh, raw?.county?.name, ''),
      name_en: first(raw?.county?.name_en, raw?.county?.name, ''),
      code: first(raw?.county?.code, null),
      bbox: bbox || [centre[0] - 0.25, centre[1] - 0.2, centre[0] + 0.25, centre[1] + 0.2],
      centre,
    },
    gk: gkOf(raw, centre),
    groups,
    layers,
    basemap,
    hillshade,
    landUses: first(raw?.land_uses, raw?.landuse, null),
    version: first(raw?.version, raw?.data_version, raw?.current_version, raw?.catalog_fingerprint, null),
    zoom: { min: first(raw?.zoom?.min, 0), max: first(raw?.zoom?.max, 20) },
    udbLimit: first(raw?.udb_expansion_limit, null),
  };
}

function indexOfGroup(key) {
  const i = GROUPS.findIndex((g) => g.key === key);
  return i < 0 ? GROUPS.length : i;
}
