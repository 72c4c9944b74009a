// Conflicts view: run a plan-vs-red-lines analysis as a job, follow it, show its polygons as a layer
// and its summary by township. The list of analyses is the county's, from the server (GET /api/v1/jobs,
// newest first, with who ran each): another planner's analyses, or one's own from another computer, show too.
import { api, urls } from './api.js';
import { $, esc, fmt, html, localDateTime, setHtml } from './dom.js';
import { currentPrincipal } from './auth.js';
import { onLangChange, pick, t } from './i18n.js';
import { areaCells, VERDICT_COLOURS, verdictBadge } from './checkresult.js';
import { createPager } from './paging.js';
import { L } from './vendor.js';

const PAGE = 10;
const LIST_POLL_MS = 3000; // while an analysis in the list is queued or running and the panel is open
const active = (job) => job && (job.status === 'queued' || job.status === 'running');

// Earlier versions remembered the jobs started in this browser; the server's list replaces that.
try {
  window.localStorage.removeItem('gis-platform.conflict-jobs');
} catch {
  /* ignore */
}

export function createConflicts(map, config, renderer, panel) {
  const jobsBox = $('.conflict-jobs', panel);
  const output = $('.conflict-output', panel);
  const errorBox = $('[data-error-for="conflicts"]', panel);
  let page = null; // {total, limit, offset, items} of GET /api/v1/jobs?kind=conflicts
  let listError = null;
  let onlyMine = false;
  let current = null; // {job, collection}
  let layer = null;
  let timer = null; // polls the job being shown
  let listTimer = null; // reloads the list while one of its analyses is under way
  let loading = null; // the list request in flight

  function statusText(job) {
    const percent = job.status === 'running' && job.progress && job.progress.percent !== null ? ` ${job.progress.percent}%` : '';
    return `${t(`job.${job.status}`)}${percent}`;
  }

  function renderJobs() {
    const me = currentPrincipal();
    const filter = html`<label class="small"><input type="checkbox" data-filter="mine" ${onlyMine ? html`checked` : ''}> ${t('conflicts.mine')}</label>`;
    if (listError) {
      setHtml(jobsBox, html`${filter}<p class="error">${listError}</p>`);
      return;
    }
    if (!page) {
      setHtml(jobsBox, html`${filter}<p class="muted small">${t('common.loading')}</p>`);
      return;
    }
    if (!page.items.length) {
      setHtml(jobsBox, html`${filter}<p class="muted small">${t('conflicts.noJobs')}</p>`);
      return;
    }
    const shown = current && current.job.id;
    setHtml(jobsBox, html`${filter}
      <div class="scroll-x"><table class="data small history jobs">
        <thead><tr><th>${t('conflicts.time')}</th><th>${t('conflicts.status')}</th><th>${t('conflicts.by')}</th></tr></thead>
        <tbody>${page.items.map((job) => html`
          <tr data-job="${job.id}" tabindex="0" title="${t('conflicts.open')}" ${job.id === shown ? html`aria-current="true" class="selected"` : ''}>
            <td>${job.id === shown ? html`<b>${localDateTime(job.created_at)}</b>` : localDateTime(job.created_at)}</td>
            <td><span class="status status-${job.status}" data-col="status">${statusText(job)}</span></td>
            <td data-col="by">${job.created_by}${me && me.name === job.created_by ? html` <span class="muted">${t('conflicts.me')}</span>` : ''}</td>
          </tr>`)}</tbody>
      </table></div>
      ${page.total > PAGE ? pager.bar(page.items.length, page.total, (range) => t('history.range', range)) : ''}`);
  }

  /** The county's analyses from the server (this page of them), newest first. */
  async function reload() {
    clearTimeout(listTimer);
    const request = api.get(urls.jobs, { kind: 'conflicts', mine: onlyMine ? 'true' : null, limit: PAGE, offset: pager.offset });
    loading = request;
    try {
      const next = await request;
      if (loading !== request) return; // a newer request replaced this one
      page = next;
      listError = null;
      if (pager.offset > 0 && !page.items.length && page.total) {
        pager.reset(Math.floor((page.total - 1) / PAGE) * PAGE); // the list shrank: its last page
        reload();
        return;
      }
    } catch (err) {
      if (loading !== request) return;
      listError = t('conflicts.listFailed', { message: err.message });
    }
    renderJobs();
    if (!listError && page.items.some(active) && !panel.hidden) listTimer = setTimeout(reload, LIST_POLL_MS);
  }

  async function refresh(id) {
    const job = await api.get(urls.conflict(id));
    if (page) page = { ...page, items: page.items.map((j) => (j.id === id ? job : j)) };
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
        style: (f) => ({ color: VERDICT_COLOURS[f.properties.level] || '#CF1322', weight: 1.5, fillOpacity: 0.45 }),
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
      pager.reset(); // the new analysis is the newest: on the first page
      await Promise.all([reload(), show(job.id)]);
    } catch (err) {
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  });
  const open = (id) => show(id).catch((err) => {
    errorBox.textContent = err.message;
    errorBox.hidden = false;
  });
  const pager = createPager({ list: jobsBox, size: PAGE, load: reload });
  jobsBox.addEventListener('click', (e) => {
    const row = e.target.closest('[data-job]');
    if (row) open(row.dataset.job);
  });
  jobsBox.addEventListener('keydown', (e) => {
    const row = e.target.closest('[data-job]');
    if (row && e.key === 'Enter') open(row.dataset.job);
  });
  jobsBox.addEventListener('change', (e) => {
    if (e.target.matches('[data-filter="mine"]')) {
      onlyMine = e.target.checked;
      pager.first();
    }
  });

  onLangChange(() => {
    renderJobs();
    renderOutput();
  });
  renderJobs();
  // loadRemembered: the name main.js calls when the tab opens (the list is the server's now)
  return { reload, loadRemembered: reload, show, clear: () => layer && layer.remove() };
}
