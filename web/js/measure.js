// Measuring tools: geodesic distance and ellipsoidal area on GRS80, shown in m² / 公顷 / 亩.
import { $, fmt, html, setHtml } from './dom.js';
import { areaFigures, lineLength, polygonArea } from './geodesy.js';
import { onLangChange, t } from './i18n.js';
import { mode, setMode } from './mode.js';
import { L } from './vendor.js';

/** Ellipsoidal area figures of a GeoJSON Polygon / MultiPolygon in lon/lat. */
export function checkGeometryArea(geometry) {
  const polygons = geometry.type === 'MultiPolygon' ? geometry.coordinates : [geometry.coordinates];
  return areaFigures(polygons.reduce((sum, rings) => sum + polygonArea(rings), 0));
}

function lengthText(m) {
  return m >= 1000 ? `${fmt(m / 1000, 3)} km` : `${fmt(m, 2)} m`;
}

export function createMeasureTool(map, renderer, container) {
  const group = L.layerGroup().addTo(map);
  const output = $('.measure-output', container);
  let lastResult = null;

  function render() {
    if (!lastResult) {
      setHtml(output, html`<span class="muted">${t('measure.hint')}</span>`);
      return;
    }
    if (lastResult.kind === 'line') {
      setHtml(output, html`<span data-measure="length">${t('measure.length')}: ${lengthText(lastResult.length)}</span>`);
    } else {
      const a = lastResult.area;
      setHtml(output, html`<span data-measure="area">${t('measure.area')}: <b data-unit="m2">${fmt(a.m2, 2)}</b> m² · <b data-unit="hectare">${fmt(a.hectare, 4)}</b> ${t('unit.hectare')} · <b data-unit="mu">${fmt(a.mu, 2)}</b> ${t('unit.mu')}</span><br><span class="small muted">${t('measure.perimeter')}: ${lengthText(lastResult.length)} · ${t('measure.ellipsoidal')}</span>`);
    }
  }

  function start(shape) {
    map.pm.disableDraw();
    setMode('measure');
    map.pm.enableDraw(shape, {
      snappable: false,
      pathOptions: { color: '#D4380D', weight: 2, dashArray: '6 4', fillOpacity: 0.08, measure: true },
      templineStyle: { color: '#D4380D' },
      hintlineStyle: { color: '#D4380D', dashArray: '4 4' },
    });
  }

  map.on('pm:create', (e) => {
    if (!e.layer.options.measure) return;
    const geometry = e.layer.toGeoJSON(false).geometry;
    e.layer.remove();
    let layer;
    if (e.shape === 'Line') {
      const pts = geometry.coordinates;
      lastResult = { kind: 'line', length: lineLength(pts) };
      layer = L.polyline(pts.map(([x, y]) => [y, x]), { renderer, color: '#D4380D', weight: 2, dashArray: '6 4', interactive: false });
    } else {
      const ring = geometry.coordinates[0];
      lastResult = { kind: 'polygon', area: areaFigures(polygonArea(geometry.coordinates)), length: lineLength(ring) };
      layer = L.polygon(ring.map(([x, y]) => [y, x]), { renderer, color: '#D4380D', weight: 2, dashArray: '6 4', fillOpacity: 0.08, interactive: false });
    }
    group.addLayer(layer);
    setMode('identify');
    render();
  });
  map.on('pm:drawend', () => {
    if (mode() === 'measure') setMode('identify');
  });

  container.addEventListener('click', (e) => {
    const action = e.target.closest('[data-measure-action]')?.dataset.measureAction;
    if (action === 'line') start('Line');
    else if (action === 'area') start('Polygon');
    else if (action === 'clear') {
      map.pm.disableDraw();
      group.clearLayers();
      lastResult = null;
      setMode('identify');
      render();
    }
  });
  onLangChange(render);
  render();
}
