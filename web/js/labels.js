// Township names on the map (from the township layer's features, when it is served as GeoJSON).
import { pick } from './i18n.js';
import { L } from './vendor.js';

function ringArea(ring) {
  let a = 0;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) a += (ring[j][0] + ring[i][0]) * (ring[j][1] - ring[i][1]);
  return Math.abs(a / 2);
}

/** A point inside the ring: the middle of the widest inside span of the horizontal line through its centre. */
export function labelPoint(ring) {
  let minY = Infinity, maxY = -Infinity;
  for (const [, y] of ring) {
    minY = Math.min(minY, y);
    maxY = Math.max(maxY, y);
  }
  let best = null;
  for (const f of [0.5, 0.4, 0.6, 0.3, 0.7]) {
    const y = minY + (maxY - minY) * f;
    const xs = [];
    for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      const [x1, y1] = ring[j];
      const [x2, y2] = ring[i];
      if ((y1 > y) !== (y2 > y)) xs.push(x1 + ((y - y1) * (x2 - x1)) / (y2 - y1));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const w = xs[k + 1] - xs[k];
      if (!best || w > best.w) best = { w, x: (xs[k] + xs[k + 1]) / 2, y };
    }
  }
  return best ? [best.x, best.y] : ring[0];
}

export function townshipLabels(map, layerCfg, features) {
  const group = L.layerGroup();
  const nameField = layerCfg.name_field;
  for (const f of features) {
    if (f.type !== 'polygon' || !f.rings.length) continue;
    const name = (nameField && f.properties[nameField]) || pick(f.properties) || '';
    if (!name) continue;
    const outer = f.rings.reduce((a, b) => (ringArea(b) > ringArea(a) ? b : a));
    const [x, y] = labelPoint(outer);
    const icon = L.divIcon({ className: 'map-label-icon', html: '', iconSize: null });
    const marker = L.marker([y, x], { icon, interactive: false, keyboard: false, pane: 'highlight' });
    marker.on('add', () => {
      const el = marker.getElement();
      el.textContent = '';
      const span = document.createElement('span');
      span.className = 'map-label';
      span.textContent = String(name);
      el.append(span);
    });
    group.addLayer(marker);
  }
  return group;
}
