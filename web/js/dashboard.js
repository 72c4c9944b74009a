// Leadership dashboard: indicator cards, charts by township and of checks per month, a township
// table. Numbers are shown exactly as the API gives them (no re-rounding, no recomputation).
// ECharts (1 MB) is loaded on first use, so it does not delay the map.
import { api, urls } from './api.js';
import { $, html, setHtml } from './dom.js';
import { lang, onLangChange, pick, t } from './i18n.js';
import { unitOf } from './identify.js';

import { VERDICT_CLASS, VERDICT_COLOURS, VERDICTS } from './checkresult.js';

const verdictKey = (v) => `verdict.${VERDICT_CLASS[v] || 'unknown'}`;
const verdictName = (v) => (lang() === 'zh' ? v : `${v} ${t(verdictKey(v))}`);

const raw = (v) => (v === null || v === undefined ? '—' : String(v));
const townsOf = (ind) => ind.by_township ?? ind.townships;

function isWarning(ind) {
  if (ind.warning === true || ind.status === 'warning' || ind.status === 'exceeded' || ind.level === 'warning') return true;
  const limit = ind.limit ?? ind.max;
  return limit !== null && limit !== undefined && Number(ind.value) > Number(limit);
}

/** checks per month by verdict, from the shapes the API may use → [{month, 禁止, 需补充用途, 有条件, 通过}] */
function monthly(data) {
  const checks = (data.indicators || []).find((i) => Array.isArray(i.by_month));
  const src = checks?.by_month ?? data.checks_by_month ?? data.checks_per_month ?? data.checks?.by_month ?? [];
  const rows = new Map();
  const add = (month, verdict, count) => {
    if (!rows.has(month)) rows.set(month, { month, ...Object.fromEntries(VERDICTS.map((v) => [v, 0])) });
    rows.get(month)[verdict] = (rows.get(month)[verdict] || 0) + Number(count || 0);
  };
  if (Array.isArray(src)) {
    for (const r of src) {
      if (r.verdict !== undefined) add(r.month, r.verdict, r.count ?? r.n);
      else if (r.by_verdict || r.verdicts || r.counts) for (const [v, c] of Object.entries(r.by_verdict || r.verdicts || r.counts)) add(r.month, v, c);
      else for (const v of VERDICTS) add(r.month, v, r[v]);
    }
  } else if (src && typeof src === 'object') {
    for (const [month, counts] of Object.entries(src)) for (const [v, c] of Object.entries(counts || {})) add(month, v, c);
  }
  return [...rows.values()].sort((a, b) => String(a.month).localeCompare(String(b.month)));
}

export function createDashboard(container) {
  let data = null;
  let error = null;
  let selected = null;
  const charts = [];

  function townshipIndicators() {
    return (data.indicators || []).filter((i) => Array.isArray(townsOf(i)) && townsOf(i).length);
  }

  function cards() {
    return html`<div class="cards">${(data.indicators || []).map((ind) => html`
      <div class="card ${isWarning(ind) ? 'warning' : ''}" data-indicator="${ind.code}">
        <div class="card-name">${pick(ind)}</div>
        <div class="card-value"><span data-value>${raw(ind.value)}</span> <small>${unitOf(ind)}</small></div>
        ${ind.target !== undefined && ind.target !== null ? html`<div class="card-extra">${t('dash.target')} <span data-target>${raw(ind.target)}</span></div>` : ''}
        ${ind.limit !== undefined && ind.limit !== null ? html`<div class="card-extra">${t('dash.limit')} <span data-limit>${raw(ind.limit)}</span>${isWarning(ind) ? html` <b class="warn-text">${t('dash.exceeded')}</b>` : ''}</div>` : ''}
        ${ind.note || ind.note_zh || ind.note_en ? html`<div class="card-extra muted">${pick(ind, 'note') || ind.note}</div>` : ''}
        ${ind.by_verdict ? html`<div class="card-extra">${Object.entries(ind.by_verdict).map(([v, n]) => html`<span class="chip" data-verdict-count="${v}">${v} ${n}</span>`)}</div>` : ''}
      </div>`)}</div>`;
  }

  function table() {
    const inds = townshipIndicators();
    const towns = new Map((data.townships || []).map((tw) => [tw.code, tw.name]));
    for (const ind of inds) for (const tw of townsOf(ind)) if (!towns.has(tw.code)) towns.set(tw.code, tw.name);
    const row = (ind, code) => townsOf(ind).find((tw) => tw.code === code);
    return html`<div class="scroll-x"><table class="data township-table">
      <thead><tr><th>${t('dash.township')}</th>${inds.map((i) => html`<th data-indicator="${i.code}">${pick(i)}${i.unit ? html`<br><small>${unitOf(i)}</small>` : ''}</th>`)}</tr></thead>
      <tbody>${[...towns].map(([code, name]) => html`<tr data-township="${code}"><th>${name}</th>${inds.map((i) => html`<td class="num ${row(i, code)?.warning ? 'warning' : ''}" data-indicator="${i.code}">${raw(row(i, code)?.value)}</td>`)}</tr>`)}</tbody>
      <tfoot><tr><th>${t('dash.county')}</th>${inds.map((i) => html`<td class="num" data-indicator="${i.code}">${raw(i.value)}</td>`)}</tr></tfoot>
    </table></div>`;
  }

  function render() {
    for (const c of charts.splice(0)) c.dispose();
    if (error) {
      setHtml(container, html`<p class="error">${error}</p>`);
      return;
    }
    if (!data) {
      setHtml(container, html`<p class="muted">${t('common.loading')}</p>`);
      return;
    }
    const inds = townshipIndicators();
    if (!selected || !inds.some((i) => i.code === selected)) selected = inds[0]?.code ?? null;
    setHtml(container, html`
      <h2>${t('dash.title')}${data.as_of || data.generated_at ? html` <small class="muted">${t('dash.asOf', { when: new Date(data.as_of || data.generated_at).toLocaleString(lang() === 'zh' ? 'zh-CN' : 'en-GB') })}</small>` : ''}</h2>
      ${(data.notes || []).map((n) => html`<p class="notice small">${n}</p>`)}
      ${cards()}
      <div class="chart-row">
        <section class="chart-box"><header><h3>${t('dash.byTownship')}</h3>
          <select data-indicator-select>${inds.map((i) => html`<option value="${i.code}" ${i.code === selected ? html`selected` : ''}>${pick(i)}</option>`)}</select></header>
          <div class="chart" data-chart="township"></div></section>
        <section class="chart-box"><header><h3>${t('dash.checksByMonth')}</h3></header><div class="chart" data-chart="checks"></div></section>
      </div>
      <h3>${t('dash.townshipTable')}</h3>
      ${table()}`);
    $('[data-indicator-select]', container)?.addEventListener('change', (e) => {
      selected = e.target.value;
      drawCharts();
    });
    drawCharts();
  }

  let echarts = null;
  async function drawCharts() {
    for (const c of charts.splice(0)) c.dispose();
    if (container.offsetParent === null) return; // hidden: drawn when shown
    if (!echarts) echarts = await import('echarts');
    for (const c of charts.splice(0)) c.dispose();
    const ind = townshipIndicators().find((i) => i.code === selected);
    const townEl = $('[data-chart="township"]', container);
    if (ind && townEl) {
      const chart = echarts.getInstanceByDom(townEl) || echarts.init(townEl, null, { renderer: 'canvas' });
      chart.setOption({
        animation: false,
        grid: { left: 56, right: 12, top: 24, bottom: 60 },
        tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: townsOf(ind).map((tw) => tw.name), axisLabel: { rotate: 40, fontSize: 11 } },
        yAxis: { type: 'value', name: unitOf(ind) },
        series: [{
          type: 'bar',
          data: townsOf(ind).map((tw) => ({ value: tw.value, itemStyle: { color: tw.warning ? '#FA8C16' : '#2F6FB2' } })),
          markLine: ind.limit !== undefined && ind.limit !== null ? { symbol: 'none', lineStyle: { color: '#CF1322', type: 'dashed' }, data: [{ yAxis: ind.limit, name: t('dash.limit') }], label: { formatter: `${t('dash.limit')} ${ind.limit}` } } : undefined,
        }],
      });
      charts.push(chart);
    }
    const months = monthly(data);
    const checksEl = $('[data-chart="checks"]', container);
    if (checksEl) {
      const chart = echarts.getInstanceByDom(checksEl) || echarts.init(checksEl, null, { renderer: 'canvas' });
      chart.setOption({
        animation: false,
        grid: { left: 40, right: 12, top: 36, bottom: 30 },
        legend: { top: 0, data: VERDICTS.map((v) => ({ name: verdictName(v) })) },
        tooltip: { trigger: 'axis' },
        xAxis: { type: 'category', data: months.map((m) => m.month) },
        yAxis: { type: 'value', minInterval: 1 },
        series: VERDICTS.map((v) => ({ name: verdictName(v), type: 'bar', stack: 'checks', data: months.map((m) => m[v]), itemStyle: { color: VERDICT_COLOURS[v] } })),
      });
      charts.push(chart);
    }
    container.dataset.charts = String(charts.length);
  }

  async function load() {
    error = null;
    try {
      data = await api.get(urls.dashboard);
    } catch (err) {
      error = t('dash.failed', { message: err.message });
    }
    render();
  }

  window.addEventListener('resize', () => charts.forEach((c) => c.resize()));
  onLangChange(render);
  return { load, shown: () => (data ? drawCharts() : load()), monthly: () => (data ? monthly(data) : []) };
}
