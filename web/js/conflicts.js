// Conflicts view: run a plan-vs-red-lines analysis as a job, follow it, show its polygons as a layer
// and its summary by township. Job ids started here are remembered in this browser.
import { api, urls } from './api.js';
import { $, esc, fmt, html, setHtml } from './dom.js';
import { lang, onLangChange, pick, t } from './i18n.js';
import { areaCells, verdictBadge } from './checkresult.js';
import { L } from './vendor.js';

const KEY = 'gis-platform.conflict-jobs';
const LEVEL_COLOURS = { 禁止: '#CF1322', 有条件: '#FA8C16', 通过: '#389E0D' };

function remembered() {
  try {
    return JSON.parse(window.localStorage.getItem(KEY) || '[]').filter((x) => typeof x === 'string');
  } catch {
    return [];
  }
}

function remember(id) {
  const ids = [id, ...remembered().filter((x) => x !== id)].slice(0, 20);
  try {
    window.localStorage.setItem(KEY, JSON.stringify(ids));
  } catch {
    /* ignore */
  }
}

export function createConflicts(map, config, renderer, panel) {
  const jobsBox = $('.conflict-jobs', panel);
  const output = $('.conflict-output', panel);
  const errorBox = $('[data-error-for="conflicts"]', panel);
  const jobs = new Map(); // id → job document
  let current = null; // {job, collection}
  let layer = null;
  let timer = null;

  function renderJobs() {
    const ids = remembered();
    if (!ids.length) {
      setHtml(jobsBox, html`<p class="muted small">${t('conflicts.noJobs')}</p>`);
      return;
    }
    const locale = lang() === 'zh' ? 'zh-CN' : 'en-GB';
    setHtml(jobsBox, html`<ul class="jobs">${ids.map((id) => {
      const job = jobs.get(id);
      const status = job ? job.status : 'unknown';
      return html`<li><button type="button" class="link" data-job="${id}">${job ? new Date(job.created_at).toLocaleString(locale) : id.slice(0, 8)}</button>
        <span class="status status-${status}">${t(`job.${status}`)}${job && job.status === 'running' && job.progress?.percent !== null ? ` ${job.progress.percent}%` : ''}</span></li>`;
    })}</ul>`);
  }

  async function refresh(id) {
    const job = await api.get(urls.conflict(id));
    jobs.set(id, job);
    return job;
  }

  const layerName = (code) => {
    const layer = config.layers.get(code);
    return layer ? pick(layer) : code;
  };

  function summaryTable(summary) {
    const rows = summary.rows || [];
    const byTown = new Map();
    for (const r of rows) {
      const key = r.township_code || '';
      if (!byTown.has(key)) byTown.set(key, []);
      byTown.get(key).push(r);
    }
    const body = [...byTown.values()].map((group) => group.map((r, i) => html`<tr data-township="${r.township_code || ''}">
      ${i === 0 ? html`<th rowspan="${group.length}">${r.township_name || r.township_code || t('conflicts.noTownship')}</th>` : ''}
      <td>${verdictBadge(r.level, 'small')} ${layerName(r.layer_code)}</td>
      <td class="num">${r.pieces}</td>${areaCells(r.area)}</tr>`));
    const totals = (summary.totals || []).map((r) => html`<tr class="total"><th>${t('check.total')}</th>
      <td>${verdictBadge(r.level, 'small')} ${layerName(r.layer_code)}</td><td class="num">${r.pieces}</td>${areaCells(r.area)}</tr>`);
    return html`<div class="scroll-x"><table class="data small conflict-summary">
      <thead><tr><th>${t('conflicts.township')}</th><th>${t('conflicts.rule')}</th><th>${t('conflicts.pieces')}</th><th>m²</th><th>${t('unit.hectare')}</th><th>${t('unit.mu')}</th></tr></thead>
      <tbody>${body}</tbody><tfoot>${totals}</tfoot></table></div>`;
  }

  function renderOutput() {
    if (!current) {
      setHtml(output, '');
      return;
    }
    const { job, collection } = current;
    if (job.status !== 'succeeded') {
      setHtml(output, html`<p class="muted">${t(`job.${job.status}`)}${job.error ? html`: <span class="error">${job.error}</span>` : ''}</p>`);
      return;
    }
    const s = job.summary || {};
    const truncated = collection && collection.numberMatched > collection.numberReturned;
    setHtml(output, html`
      <p class="small">${t('conflicts.summaryHead', { plan: pick(config.layers.get(s.plan_layer)) || s.plan_layer || '', count: s.feature_count ?? 0 })}</p>
      ${truncated ? html`<p class="notice small">${t('conflicts.truncated', { shown: collection.numberReturned, total: collection.numberMatched })}</p>` : ''}
      <p class="small"><a href="${urls.conflictGpkg(job.id)}" data-download="gpkg">${t('conflicts.gpkg')}</a></p>
      ${summaryTable(s)}`);
  }

  async function show(id) {
    errorBox.hidden = true;
    clearInterval(timer);
    const job = await refresh(id);
    current = { job, collection: null };
    renderJobs();
    if (layer) layer.remove();
    layer = null;
    if (job.status === 'queued' || job.status === 'running') {
      renderOutput();
      timer = setInterval(async () => {
        const next = await refresh(id).catch(() => null);
        if (!next) return;
        renderJobs();
        if (next.status !== 'queued' && next.status !== 'running') {
          clearInterval(timer);
          show(id);
        }
      }, 2000);
      return;
    }
    if (job.status === 'succeeded') {
      const collection = await api.get(urls.conflictFeatures(id));
      current.collection = collection;
      layer = L.geoJSON(collection, {
        renderer,
        pane: 'highlight',
        style: (f) => ({ color: LEVEL_COLOURS[f.properties.level] || '#CF1322', weight: 1.5, fillOpacity: 0.45 }),
        onEachFeature: (f, l) => l.bindPopup(() => {
          const p = f.properties;
          return `<b>${esc(p.level)}</b> ${esc(p.township_name || '')}<br>${esc(p.plan_use_code || '')} ${esc(p.plan_use_name || '')}<br>${esc(p.redline_layer)} ${esc(p.redline_ids || '')}<br>${esc(fmt(p.area_m2, 2))} m² · ${esc(fmt(p.area_mu, 2))} ${esc(t('unit.mu'))}`;
        }),
      }).addTo(map);
      if (collection.features.length) map.fitBounds(layer.getBounds(), { padding: [20, 20] });
    }
    renderOutput();
  }

  $('[data-action="run-conflicts"]', panel).addEventListener('click', async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    errorBox.hidden = true;
    try {
      const job = await api.post(urls.conflicts, {});
      remember(job.id);
      jobs.set(job.id, job);
      await show(job.id);
    } catch (err) {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  jobsBox.addEventListener('click', (e) => {
    const b = e.target.closest('[data-job]');
    if (b) show(b.dataset.job).catch((err) => {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    });
  });

  async function loadRemembered() {
    for (const id of remembered()) await refresh(id).catch(() => null);
    renderJobs();
  }
  onLangChange(() => {
    renderJobs();
    renderOutput();
  });
  renderJobs();
  return { loadRemembered, show, clear: () => layer && layer.remove() };
}
