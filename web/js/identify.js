// Identify: a click lists what every visible layer says at that point, with the catalogue's labels.
import { api, isAbort, urls } from './api.js';
import { $, html, setHtml } from './dom.js';
import { lang, onLangChange, pick, t } from './i18n.js';
import { mode } from './mode.js';
import { L } from './vendor.js';

export const UNIT_LABELS = {
  m2: { zh: 'm²', en: 'm²' },
  hectare: { zh: '公顷', en: 'ha' },
  mu: { zh: '亩', en: 'mu' },
  km2: { zh: 'km²', en: 'km²' },
  person: { zh: '人', en: 'persons' },
  '10k_yuan': { zh: '万元', en: '10k CNY' },
  wan_mu: { zh: '万亩', en: '10k mu' },
  ratio: { zh: '倍', en: '×' },
  count: { zh: '次', en: '' },
};

export function unitLabel(unit) {
  const u = UNIT_LABELS[unit];
  return u ? u[lang()] : unit || '';
}

/** The unit of an API object that names it ({unit, unit_zh?, unit_en?}), in the current language. */
export function unitOf(obj) {
  if (!obj) return '';
  if (UNIT_LABELS[obj.unit]) return unitLabel(obj.unit);
  return pick(obj, 'unit') || obj.unit || '';
}

export function createIdentify(map, tree, config, panel) {
  let marker = null;
  let last = null;
  let controller = null;
  const body = $('.panel-body', panel);

  function close() {
    panel.hidden = true;
    if (marker) marker.remove();
    marker = null;
    last = null;
  }
  $('.panel-close', panel).addEventListener('click', close);

  function unitOf(layerCode, field) {
    const cfg = config.layers.get(layerCode);
    const def = cfg && (cfg.fields || []).find((f) => f.name === field);
    return def ? def.unit : null;
  }

  function render() {
    if (!last) return;
    const { lon, lat, result, error } = last;
    const head = html`<p class="muted small">${t('identify.at', { lon: lon.toFixed(6), lat: lat.toFixed(6) })}</p>`;
    if (error) {
      setHtml(body, html`${head}<p class="error">${error}</p>`);
      return;
    }
    if (!result) {
      setHtml(body, html`${head}<p class="muted">${t('common.loading')}</p>`);
      return;
    }
    if (!result.layers.length) {
      setHtml(body, html`${head}<p class="muted">${t('identify.nothing')}</p>`);
      return;
    }
    const sections = result.layers.map((layer) => html`
      <section class="identify-layer" data-layer="${layer.code}">
        <h4>${pick(layer)} <span class="muted small">${layer.code}${layer.version ? ` · v${layer.version.version_no}` : ''}</span></h4>
        ${layer.features.map((f) => html`
          <table class="attrs">
            <tbody>${f.fields.map((field) => html`
              <tr><th data-field="${field.name}">${pick(field, 'label')}</th>
                  <td>${field.value === null || field.value === undefined ? '—' : field.value}${unitOf(layer.code, field.name) ? ` ${unitLabel(unitOf(layer.code, field.name))}` : ''}</td></tr>`)}
            </tbody>
          </table>`)}
      </section>`);
    setHtml(body, html`${head}${sections}`);
  }

  async function identifyAt(latlng) {
    const codes = tree.visibleCodes();
    if (controller) controller.abort();
    controller = new AbortController();
    last = { lon: latlng.lng, lat: latlng.lat, result: null, error: null };
    panel.hidden = false;
    if (marker) marker.setLatLng(latlng);
    else marker = L.circleMarker(latlng, { radius: 6, color: '#0050B3', weight: 2, fillColor: '#FFFFFF', fillOpacity: 1, pane: 'highlight' }).addTo(map);
    render();
    if (!codes.length) {
      last.result = { layers: [] };
      render();
      return;
    }
    try {
      last.result = await api.get(urls.identify, { lon: latlng.lng.toFixed(8), lat: latlng.lat.toFixed(8), layers: codes.join(',') }, { signal: controller.signal });
    } catch (err) {
      if (isAbort(err)) return;
      last.error = t('identify.failed', { message: err.message });
    }
    render();
  }

  map.on('click', (e) => {
    if (mode() === 'identify') identifyAt(e.latlng);
  });
  onLangChange(render);
  return { identifyAt, close };
}
