// A check document (GET /api/v1/checks/{id}) as a result panel, and its overlaps on the map.
import { urls } from './api.js';
import { fmt, html, setHtml } from './dom.js';
import { lang, pick, t } from './i18n.js';
import { compileStyle, swatch } from './style.js';
import { L } from './vendor.js';

// The verdict levels, worst first (gis_platform/rules.py LEVELS): 需补充用途 is a check that was given no land use.
export const VERDICTS = ['禁止', '需补充用途', '有条件', '通过'];
export const VERDICT_CLASS = { 禁止: 'prohibited', 需补充用途: 'use-required', 有条件: 'conditional', 通过: 'pass' };
export const VERDICT_COLOURS = { 禁止: '#CF1322', 需补充用途: '#722ED1', 有条件: '#FA8C16', 通过: '#389E0D' };
export const USE_REQUIRED = '需补充用途';

export function verdictBadge(verdict, extra = '') {
  const cls = VERDICT_CLASS[verdict] || 'unknown';
  return html`<span class="verdict verdict-${cls} ${extra}" data-verdict="${verdict}">${verdict}${lang() === 'en' ? html` <small>${t(`verdict.${cls}`)}</small>` : ''}</span>`;
}

/** m² / 公顷 / 亩 cells of an area_figures object, exactly as the API rounded them. */
export function areaCells(area) {
  const a = area || {};
  return html`<td class="num" data-unit="m2">${fmt(a.m2, 2)}</td><td class="num" data-unit="hectare">${fmt(a.hectare, 4)}</td><td class="num" data-unit="mu">${fmt(a.mu, 2)}</td>`;
}

export function areaText(area) {
  const a = area || {};
  return html`<span data-unit="m2">${fmt(a.m2, 2)}</span> m² · <span data-unit="hectare">${fmt(a.hectare, 4)}</span> ${t('unit.hectare')} · <span data-unit="mu">${fmt(a.mu, 2)}</span> ${t('unit.mu')}`;
}

const areaHead = () => html`<th>m²</th><th>${t('unit.hectare')}</th><th>${t('unit.mu')}</th>`;

function fieldLabel(config, code, name) {
  const layer = config.layers.get(code);
  const field = layer && (layer.fields || []).find((f) => f.name === name);
  return field ? pick(field, 'label') : name;
}

function findingsBlock(check, config) {
  if (!check.findings.length) {
    return html`<p class="muted">${t(check.verdict === USE_REQUIRED ? 'check.noFindingsUseRequired' : 'check.noFindings')}</p>`;
  }
  return html`<ol class="findings">${check.findings.map((f) => html`
    <li class="finding" data-rule="${f.rule_id}">
      ${verdictBadge(f.level, 'small')}
      <strong>${f.layer_code ? pick(config.layers.get(f.layer_code)) || f.layer_code : ''}</strong>
      ${f.minor ? html`<span class="tag minor">${t('check.minor')}</span>` : ''}
      <p>${lang() === 'en' ? f.message_en || f.message_zh : f.message_zh}</p>
      ${f.area ? html`<p class="small">${t('check.area')}: ${areaText(f.area)}</p>` : ''}
      ${f.citation ? html`<p class="citation small">${t('check.citation')}: ${f.citation}</p>` : ''}
    </li>`)}</ol>`;
}

function layerTable(check, config) {
  const rows = check.layers.map((layer) => {
    const cfg = config.layers.get(layer.code);
    const keys = layer.features.length ? Object.keys(layer.features[0].attributes || {}) : [];
    return html`
      <tr class="layer-name-row ${layer.overlap.m2 > 0 ? 'hit' : ''}"><th colspan="5">
        <label><input type="checkbox" data-show-overlap="${layer.code}" ${layer.features.length ? html`checked` : html`disabled`}>
          ${cfg ? swatch({ ...cfg.style, categorized: null }, cfg.geometry_type) : ''} ${pick(layer)}
          ${layer.minor ? html`<span class="tag minor">${t('check.minor')}</span>` : ''}</label></th></tr>
      <tr data-layer="${layer.code}" class="${layer.overlap.m2 > 0 ? 'hit' : ''}">
        ${areaCells(layer.overlap)}
        <td class="num">${fmt(layer.share * 100, 2)}%</td>
        <td class="num">${layer.feature_count}</td>
      </tr>
      ${layer.features.length ? html`<tr class="features-row" data-features-of="${layer.code}"><td colspan="5">
        <details><summary>${t('check.featureTable', { count: layer.features.length })}</summary>
        <div class="scroll-x"><table class="data small">
          <thead><tr><th>${t('check.featureId')}</th>${keys.map((k) => html`<th>${fieldLabel(config, layer.code, k)}</th>`)}${areaHead()}</tr></thead>
          <tbody>${layer.features.map((f) => html`<tr data-feature="${f.feature_id}">
            <td>${f.feature_id}${f.minor ? html` <span class="tag minor">${t('check.minor')}</span>` : ''}</td>
            ${keys.map((k) => html`<td>${f.attributes[k] ?? ''}</td>`)}${areaCells(f.overlap)}</tr>`)}</tbody>
        </table></div></details></td></tr>` : ''}`;
  });
  return html`<table class="data layers-table">
    <thead><tr>${areaHead()}<th>${t('check.share')}</th><th>${t('check.features')}</th></tr></thead>
    <tbody>${rows}</tbody></table>`;
}

function landSurveyBlock(check) {
  const ls = check.land_survey;
  if (!ls || !ls.classes.length) return '';
  return html`<h4>${t('check.landSurvey')}</h4>
    <div class="scroll-x"><table class="data small land-survey">
      <thead><tr><th>${t('check.dlbm')}</th><th>${t('check.dlmc')}</th>${areaHead()}<th>${t('check.tiankan')} m²</th><th>${t('check.net')} m²</th><th>${t('check.net')} ${t('unit.mu')}</th></tr></thead>
      <tbody>${ls.classes.map((c) => html`<tr data-dlbm="${c.dlbm}"><td>${c.dlbm}</td><td>${c.dlmc}</td>${areaCells(c.area)}<td class="num">${fmt(c.tiankan.m2, 2)}</td><td class="num">${fmt(c.net.m2, 2)}</td><td class="num">${fmt(c.net.mu, 2)}</td></tr>`)}</tbody>
      <tfoot><tr><th colspan="2">${t('check.total')}</th>${areaCells(ls.total)}<td class="num">${fmt(ls.tiankan_total.m2, 2)}</td><td></td><td></td></tr></tfoot>
    </table></div>
    <p class="small">${t('check.cultivatedNet')}: ${areaText(ls.cultivated_net)}</p>`;
}

/** The proposed use and where it came from (a field of the uploaded file, read as which classification). */
function landUseText(lu) {
  if (!lu) return t('check.noLandUse');
  const source = lu.source || {};
  let from = '';
  if (source.from === 'file') {
    from = t('check.useFromFile', {
      field_label: pick(source, 'field_label'), field: source.field, value: source.value, classification: pick(source, 'classification'),
    });
    if (source.read_as === 'crosswalk') from += t('check.useViaCrosswalk', { code: source.survey_code });
    if (source.verify) from += t('check.useVerify');
  } else if (source.from === 'given') from = t('check.useGiven');
  return html`${lu.code} ${pick(lu)}${from ? html`<br><span class="small muted" data-use-source="${source.from}">${from}</span>` : ''}`;
}

/** `actions`: the 复核 / 重新核验 buttons (check.js); their outcome is drawn into `.replay-slot`. */
export function renderCheck(container, check, config, { siblings = [], onSibling, actions = '' } = {}) {
  const p = check.parcel;
  const project = check.project || {};
  const lu = check.land_use;
  const created = check.created_at ? new Date(check.created_at).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en-GB') : '';
  setHtml(container, html`
    <article class="check-result" data-check-id="${check.id}">
      ${siblings.length > 1 ? html`<nav class="siblings"><span class="small">${t('check.fileParcels', { count: siblings.length })}</span>
        ${siblings.map((s, i) => html`<button type="button" class="chip ${s.id === check.id ? 'current' : ''}" data-sibling="${i}">${s.parcel.label || i + 1} ${verdictBadge(s.verdict, 'small')}</button>`)}</nav>` : ''}
      <header>
        ${verdictBadge(check.verdict, 'large')}
        <div>
          <div class="project" data-title>${project.name || p.label || t('check.unnamed')} ${project.number ? html`<span class="muted">(${project.number})</span>` : ''}</div>
          <div class="muted small">${created} · ${t('check.id')} <code>${check.id}</code></div>
        </div>
      </header>
      <p class="reports">
        <a href="${urls.reportHtml(check.id)}" target="_blank" rel="noopener" data-report="html">${t('check.reportHtml')}</a>
        <a href="${urls.reportPdf(check.id)}" target="_blank" rel="noopener" data-report="pdf">${t('check.reportPdf')}</a>
      </p>
      ${check.verdict === USE_REQUIRED ? html`<p class="notice small use-required-notice" data-use-required>${t('check.useRequiredNotice')}</p>` : ''}
      ${actions ? html`<p class="check-actions">${actions}</p>` : ''}
      ${check.rechecked_from ? html`<p class="small recheck-of">${t('replay.recheckOf')}
        <button type="button" class="link" data-open-check="${check.rechecked_from}"><code>${check.rechecked_from}</code></button></p>` : ''}
      <div class="replay-slot" aria-live="polite"></div>
      <dl class="facts">
        ${p.label && project.name ? html`<dt>${t('check.parcelName')}</dt><dd data-parcel-label>${p.label}</dd>` : ''}
        <dt>${t('check.parcelArea')}</dt><dd data-area="parcel">${areaText(p.area)}</dd>
        ${p.buffer_m ? html`<dt>${t('check.checkedArea', { m: p.buffer_m })}</dt><dd data-area="checked">${areaText(p.checked_area)}</dd>` : ''}
        <dt>${t('check.landUse')}</dt><dd data-land-use="${lu ? lu.code : ''}">${landUseText(lu)}</dd>
        <dt>${t('check.townships')}</dt><dd>${(p.townships || []).map((tw) => html`<span class="chip">${tw.name || tw.code} ${fmt(tw.area.mu, 2)} ${t('unit.mu')}</span>`)}</dd>
        <dt>${t('check.areaModel')}</dt><dd class="small">${areaModelText(check.area_model)}</dd>
        <dt>${t('check.source')}</dt><dd class="small">${p.source_crs || ''} · ${t('check.vertices', { n: p.vertex_count })}</dd>
      </dl>
      ${(p.repairs || []).length ? html`<p class="notice small">${p.repairs.join('; ')}</p>` : ''}
      <h4>${t('check.findings')}</h4>
      ${findingsBlock(check, config)}
      <h4>${t('check.byLayer')}</h4>
      ${layerTable(check, config)}
      ${landSurveyBlock(check)}
      ${(check.missing_layers || []).length ? html`<p class="notice small">${t('check.missing', { layers: check.missing_layers.join(', ') })}</p>` : ''}
    </article>`);
  if (onSibling) {
    for (const b of container.querySelectorAll('[data-sibling]')) b.addEventListener('click', () => onSibling(Number(b.dataset.sibling)));
  }
}

/** The parcel and its overlaps on the map, each layer's overlaps in that layer's colours. */
export function createCheckOverlay(map, config, renderer) {
  const group = L.layerGroup().addTo(map);
  const perLayer = new Map();
  function clear() {
    group.clearLayers();
    perLayer.clear();
  }
  function show(check, { fit = true } = {}) {
    clear();
    const ordered = [...check.layers].sort((a, b) => (config.layers.get(a.code)?.order ?? 0) - (config.layers.get(b.code)?.order ?? 0));
    for (const layer of ordered) {
      if (!layer.features.length) continue;
      const cfg = config.layers.get(layer.code);
      const styleOf = compileStyle(cfg ? cfg.style : {});
      const lg = L.geoJSON(
        { type: 'FeatureCollection', features: layer.features.filter((f) => f.geometry).map((f) => ({ type: 'Feature', geometry: f.geometry, properties: f.attributes || {} })) },
        {
          renderer,
          pane: 'highlight',
          interactive: false,
          style: (feature) => {
            const st = styleOf(feature.properties);
            return { color: st.stroke, weight: 2, fillColor: st.fill, fillOpacity: 0.6, opacity: 1 };
          },
          pointToLayer: (feature, latlng) => L.circleMarker(latlng, { renderer, radius: 6 }),
        },
      );
      perLayer.set(layer.code, lg);
      group.addLayer(lg);
    }
    const parcel = L.geoJSON(check.parcel.geometry, { renderer, pane: 'highlight', interactive: false, style: { color: '#0050B3', weight: 3, fill: false, dashArray: '' } });
    group.addLayer(parcel);
    if (fit) map.fitBounds(parcel.getBounds(), { maxZoom: 17, padding: [30, 30] });
  }
  function toggle(code, visible) {
    const lg = perLayer.get(code);
    if (!lg) return;
    if (visible) group.addLayer(lg);
    else group.removeLayer(lg);
  }
  return { show, clear, toggle };
}

/** The area model in the page's language; checks stored before the survey plane name no plane. */
function areaModelText(model) {
  if (!model) return '';
  const epsg = model.survey_plane_epsg ?? model.gk_epsg;
  if (epsg && (model.name === 'ellipsoidal' || model.name === 'planar')) return t(`areaModel.${model.name}`, { epsg });
  return model.description || model.name || '';
}
