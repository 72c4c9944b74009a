// The layer tree: groups 现状 / 规划 / 管理, a toggle, an opacity slider and a legend per layer.
import { $, html, setHtml } from './dom.js';
import { onLangChange, pick, t } from './i18n.js';
import { swatch } from './style.js';
import { townshipLabels } from './labels.js';
import { featureLayer } from './tiles.js';

export function createLayerTree(map, config, container, { onChange, changes = null } = {}) {
  const state = new Map(); // code → {layer cfg, leaflet layer | null, visible, opacity}
  for (const layer of config.layers.values()) {
    state.set(layer.code, { cfg: layer, leaflet: null, visible: false, opacity: 1 });
  }

  function ensureLeaflet(entry) {
    if (!entry.leaflet) {
      entry.leaflet = featureLayer(entry.cfg);
      entry.leaflet.setOpacity(entry.opacity);
      entry.leaflet.on('featureerror', (e) => markError(entry.cfg.code, e.error));
      if (entry.cfg.role === 'township_boundary' && entry.leaflet.source.load) {
        entry.leaflet.source.load().then((features) => {
          entry.labels = townshipLabels(map, entry.cfg, features);
          if (entry.visible) entry.labels.addTo(map);
        }).catch((err) => markError(entry.cfg.code, err));
      }
    }
    return entry.leaflet;
  }

  function markError(code, error) {
    const row = container.querySelector(`[data-layer="${CSS.escape(code)}"] .layer-error`);
    if (row) {
      row.textContent = t('layers.loadError', { message: error.message });
      row.hidden = false;
    }
  }

  function setVisible(code, visible) {
    const entry = state.get(code);
    if (!entry) return;
    entry.visible = visible;
    if (visible) {
      ensureLeaflet(entry).addTo(map);
      if (entry.labels) entry.labels.addTo(map);
    } else if (entry.leaflet) {
      map.removeLayer(entry.leaflet);
      if (entry.labels) map.removeLayer(entry.labels);
    }
    const box = container.querySelector(`input[data-toggle="${CSS.escape(code)}"]`);
    if (box) box.checked = visible;
    if (onChange) onChange(code, visible);
  }

  function render() {
    const groups = config.groups.map((group) => html`
      <section class="layer-group" data-group="${group.key}">
        <h3>${pick(group)}</h3>
        <ul>${group.layers.map((layer) => renderLayer(layer, state.get(layer.code)))}</ul>
      </section>`);
    const base = html`
      <section class="layer-group" data-group="basemap">
        <h3>${t('layers.basemap')}</h3>
        <p class="muted small">${config.basemap ? t('layers.basemapOnline') : t('layers.basemapOffline')}${config.hillshade ? ` · ${t('layers.hillshade')}` : ''}</p>
      </section>`;
    setHtml(container, html`${groups}${base}`);
  }

  function renderLayer(layer, entry) {
    const id = `toggle-${layer.code}`;
    const version = layer.version && layer.version.version_no ? `v${layer.version.version_no}` : '';
    return html`
      <li class="layer" data-layer="${layer.code}">
        <div class="layer-row">
          <input type="checkbox" id="${id}" data-toggle="${layer.code}" ${entry.visible ? html`checked` : ''}>
          <label for="${id}" title="${layer.code} · ${layer.serve.toUpperCase()}">${pick(layer)}</label>
          <span class="layer-meta">${layer.minzoom > 0 ? html`<span class="minzoom" title="${t('layers.minZoomHint', { z: layer.minzoom })}">≥z${layer.minzoom}</span> ` : ''}${version}${layer.hasData ? '' : ` ${t('layers.noData')}`}</span>
          <button type="button" class="icon legend-toggle" data-legend="${layer.code}" aria-expanded="false" title="${t('layers.legend')}">▾</button>
        </div>
        <div class="layer-details" hidden>
          <label class="opacity">${t('layers.opacity')}
            <input type="range" min="0" max="100" value="${Math.round(entry.opacity * 100)}" data-opacity="${layer.code}">
          </label>
          <ul class="legend">${layer.legend.map((c) => html`<li>${swatch(c, layer.geometry_type)}<span>${pick(c, 'label') || pick(layer)}</span></li>`)}</ul>
          ${changes && layer.version && layer.version.version_no > 1 ? html`
            <button type="button" class="small" data-changes="${layer.code}">${t('changes.compare')} (v${layer.version.version_no - 1} → v${layer.version.version_no})</button>
            <div class="layer-changes" hidden></div>` : ''}
        </div>
        <p class="layer-error error" hidden></p>
      </li>`;
  }

  container.addEventListener('change', (e) => {
    const code = e.target.dataset.toggle;
    if (code) setVisible(code, e.target.checked);
  });
  container.addEventListener('input', (e) => {
    const code = e.target.dataset.opacity;
    if (!code) return;
    const entry = state.get(code);
    entry.opacity = Number(e.target.value) / 100;
    if (entry.leaflet) entry.leaflet.setOpacity(entry.opacity);
  });
  container.addEventListener('click', (e) => {
    const compare = e.target.closest('[data-changes]');
    if (compare) {
      changes.show(compare.dataset.changes, $('.layer-changes', compare.closest('.layer')));
      return;
    }
    if (e.target.closest('[data-action="clear-changes"]')) {
      changes.clear();
      e.target.closest('.layer-changes').hidden = true;
      return;
    }
    const button = e.target.closest('[data-legend]');
    if (!button) return;
    const details = $('.layer-details', button.closest('.layer'));
    details.hidden = !details.hidden;
    button.setAttribute('aria-expanded', String(!details.hidden));
    button.textContent = details.hidden ? '▾' : '▴';
  });

  render();
  for (const layer of config.layers.values()) if (layer.visible && layer.hasData) setVisible(layer.code, true);
  onLangChange(() => {
    const open = new Set([...container.querySelectorAll('.layer-details:not([hidden])')].map((d) => d.closest('.layer').dataset.layer));
    if (changes) changes.clear(); // its summary goes with the re-rendered tree
    render();
    for (const code of open) {
      const li = container.querySelector(`[data-layer="${CSS.escape(code)}"]`);
      li.querySelector('.layer-details').hidden = false;
    }
  });

  return {
    setVisible,
    visibleCodes: () => [...state.values()].filter((e) => e.visible).map((e) => e.cfg.code),
    leafletLayers: () => [...state.values()].filter((e) => e.visible && e.leaflet).map((e) => e.leaflet),
    layer: (code) => state.get(code)?.cfg,
  };
}
