// Catalogue styles (layers/catalog.yaml) → canvas drawing styles and legend swatches.
import { html } from './dom.js';

const n = (v, d) => (v === null || v === undefined || Number.isNaN(Number(v)) ? d : Number(v));

function dashArray(dash) {
  if (!dash) return [];
  return String(dash)
    .split(/[ ,]+/)
    .map(Number)
    .filter((x) => Number.isFinite(x) && x >= 0);
}

function resolved(base, cat) {
  const s = { ...base, ...(cat || {}) };
  return {
    fill: s.fill || '#888888',
    fillOpacity: n(s.fill_opacity, 0.5),
    stroke: s.stroke || s.fill || '#555555',
    strokeWidth: n(s.stroke_width, 1),
    dash: dashArray(s.dash),
    pattern: s.pattern || 'solid',
    markerColor: s.marker_color || s.fill || '#E60000',
    markerRadius: n(s.marker_radius, 5),
  };
}

function matches(category, value, mode) {
  if (value === null || value === undefined) return false;
  const text = String(value).trim();
  return (category.values || []).some((v) => (mode === 'prefix' ? text.startsWith(String(v)) : text === String(v)));
}

/** A function feature-properties → resolved style, with one resolved object per category (cached). */
export function compileStyle(style) {
  const base = resolved(style || {}, null);
  const cat = style && style.categorized;
  if (!cat || !Array.isArray(cat.categories) || !cat.categories.length) return () => base;
  const perCategory = cat.categories.map((c) => resolved(style, stripNulls(c)));
  return (props) => {
    const value = props ? props[cat.field] : undefined;
    const i = cat.categories.findIndex((c) => matches(c, value, cat.match));
    return i < 0 ? base : perCategory[i];
  };
}

function stripNulls(obj) {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== null && v !== undefined));
}

const patterns = new Map();
/** Diagonal hatch in the fill colour (永久基本农田 is drawn hatched in most portals). */
export function hatchPattern(ctx, colour) {
  const key = colour;
  if (!patterns.has(key)) {
    const tile = document.createElement('canvas');
    tile.width = 8;
    tile.height = 8;
    const c = tile.getContext('2d');
    c.strokeStyle = colour;
    c.lineWidth = 1.6;
    c.beginPath();
    c.moveTo(-2, 10);
    c.lineTo(10, -2);
    c.moveTo(-2, 2);
    c.lineTo(2, -2);
    c.moveTo(6, 10);
    c.lineTo(10, 6);
    c.stroke();
    patterns.set(key, tile);
  }
  return ctx.createPattern(patterns.get(key), 'repeat');
}

/** Draw one feature on a 2D context. rings: arrays of [x, y] in canvas pixels. */
export function drawFeature(ctx, type, rings, st, strokeScale = 1) {
  if (type === 'point') {
    ctx.setLineDash([]);
    for (const ring of rings) {
      for (const [x, y] of ring) {
        ctx.beginPath();
        ctx.arc(x, y, st.markerRadius, 0, Math.PI * 2);
        ctx.globalAlpha = Math.max(st.fillOpacity, 0.6);
        ctx.fillStyle = st.markerColor;
        ctx.fill();
        ctx.globalAlpha = 1;
        ctx.lineWidth = 1.2;
        ctx.strokeStyle = st.stroke || '#FFFFFF';
        ctx.stroke();
      }
    }
    return;
  }
  ctx.beginPath();
  for (const ring of rings) {
    ring.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
    if (type === 'polygon') ctx.closePath();
  }
  if (type === 'polygon' && st.pattern !== 'none' && st.fillOpacity > 0) {
    if (st.pattern === 'hatch') {
      ctx.globalAlpha = st.fillOpacity * 0.45;
      ctx.fillStyle = st.fill;
      ctx.fill('evenodd');
      ctx.globalAlpha = Math.min(1, st.fillOpacity + 0.4);
      ctx.fillStyle = hatchPattern(ctx, st.fill);
    } else {
      ctx.globalAlpha = st.fillOpacity;
      ctx.fillStyle = st.fill;
    }
    ctx.fill('evenodd');
  }
  if (st.strokeWidth > 0) {
    ctx.globalAlpha = 1;
    ctx.setLineDash(st.dash);
    ctx.lineWidth = type === 'polygon' && st.strokeWidth <= 1.2 ? Math.max(st.strokeWidth * strokeScale, 0.4) : st.strokeWidth;
    ctx.strokeStyle = st.stroke;
    ctx.lineJoin = 'round';
    ctx.stroke();
    ctx.setLineDash([]);
  }
  ctx.globalAlpha = 1;
}

function rgba(hex, alpha) {
  const m = /^#?([0-9a-f]{6})$/i.exec(hex || '');
  if (!m) return hex || 'transparent';
  const v = parseInt(m[1], 16);
  return `rgba(${(v >> 16) & 255},${(v >> 8) & 255},${v & 255},${alpha})`;
}

/** A small inline SVG swatch for a legend class (safe: colours are validated #RRGGBB). */
export function swatch(entry, geometryType) {
  const st = resolved(entry, null);
  const stroke = rgba(st.stroke, 1);
  const dash = st.dash.length ? st.dash.join(' ') : '';
  if (geometryType === 'point') {
    return html`<svg class="swatch" width="18" height="14" viewBox="0 0 18 14" aria-hidden="true"><circle cx="9" cy="7" r="5" fill="${rgba(st.markerColor, 1)}" stroke="${stroke}" stroke-width="1"/></svg>`;
  }
  if (geometryType === 'line') {
    return html`<svg class="swatch" width="18" height="14" viewBox="0 0 18 14" aria-hidden="true"><line x1="1" y1="7" x2="17" y2="7" stroke="${stroke}" stroke-width="${Math.max(st.strokeWidth, 1.5)}" stroke-dasharray="${dash}"/></svg>`;
  }
  const fill = st.pattern === 'none' ? 'none' : rgba(st.fill, Math.max(st.fillOpacity, st.fillOpacity > 0 ? 0.35 : 0));
  const hatch = st.pattern === 'hatch'
    ? html`<path d="M0 14 L14 0 M4 14 L18 0 M-4 10 L6 0 M8 14 L18 4" stroke="${rgba(st.fill, 1)}" stroke-width="1.2"/>`
    : '';
  return html`<svg class="swatch" width="18" height="14" viewBox="0 0 18 14" aria-hidden="true"><rect x="1" y="1" width="16" height="12" fill="${fill}" stroke="${stroke}" stroke-width="${Math.min(Math.max(st.strokeWidth, 1), 2.5)}" stroke-dasharray="${dash}"/>${hatch}</svg>`;
}

export { rgba };
