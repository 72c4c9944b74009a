// What changed in a layer since its previous version (变更比对): a summary under the layer in the tree and the
// changed features on the map — added green, removed red (where they were), changed orange.
import { api, urls } from './api.js';
import { esc, fmt, html, setHtml } from './dom.js';
import { t } from './i18n.js';
import { L } from './vendor.js';

export const CHANGE_COLOURS = { added: '#389E0D', removed: '#CF1322', changed: '#D46B08' };

export function createChangesView(map, renderer) {
  let overlay = null;

  function clear() {
    if (overlay) overlay.remove();
    overlay = null;
  }

  function popup(p) {
    const fields = p.changed_fields.length ? `<br>${esc(t('changes.fields'))}: ${esc(p.changed_fields.join(', '))}` : '';
    return `<b>${esc(t(`changes.${p.kind}`))}</b> ${esc(p.key)}<br>${esc(fmt(p.delta_m2, 2))} m²${fields}`;
  }

  function summaryHtml(result) {
    const s = result.summary;
    const row = (kind, area, label = t(`changes.${kind}`)) => html`
      <tr data-kind="${kind}"><th><span class="swatch-dot" style="background:${CHANGE_COLOURS[kind] || '#999'}"></span>${label}</th>
        <td class="num" data-col="count">${s[kind].count}</td><td class="num" data-col="mu">${fmt(area.mu, 2)}</td></tr>`;
    return html`
      <p class="small"><b>v${result.base.version_no} → v${result.target.version_no}</b> · ${t('changes.keyField', { field: result.key_field })}</p>
      <table class="data small changes-summary">
        <thead><tr><th></th><th>${t('changes.count')}</th><th>${t('unit.mu')}</th></tr></thead>
        <tbody>
          ${row('added', s.added.area)}${row('removed', s.removed.area)}${row('changed', s.changed.delta, t('changes.changedDelta'))}
          <tr data-kind="total"><th>${t('changes.net')}</th><td></td><td class="num" data-col="mu">${fmt(s.total.delta.mu, 2)}</td></tr>
        </tbody>
      </table>
      ${result.total ? html`<button type="button" class="small" data-action="clear-changes">${t('changes.clear')}</button>` : html`<p class="muted small">${t('changes.none')}</p>`}`;
  }

  /** Compare layer `code` with its previous version: the summary into `box`, the changed features on the map. */
  async function show(code, box) {
    clear();
    box.hidden = false;
    setHtml(box, html`<p class="muted small">${t('common.loading')}</p>`);
    try {
      const [result, collection] = await Promise.all([
        api.get(urls.layerChanges(code), { limit: 1 }),
        api.get(urls.layerChangesGeojson(code)),
      ]);
      setHtml(box, summaryHtml(result));
      if (!collection.features.length) return;
      overlay = L.geoJSON(collection, {
        renderer,
        pane: 'highlight',
        style: (f) => ({
          color: CHANGE_COLOURS[f.properties.kind],
          weight: 2,
          fillOpacity: 0.35,
          dashArray: f.properties.kind === 'removed' ? '4 3' : '',
        }),
        onEachFeature: (f, l) => l.bindPopup(() => popup(f.properties)),
      }).addTo(map);
      map.fitBounds(overlay.getBounds(), { padding: [20, 20], maxZoom: 16 });
    } catch (err) {
      setHtml(box, html`<p class="error small">${t('changes.failed', { message: err.message })}</p>`);
    }
  }

  return { show, clear };
}
