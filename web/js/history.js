// History of past checks (GET /api/v1/checks): filter, page, reopen one on the map.
import { api, urls } from './api.js';
import { $, fmt, html, listState, setHtml } from './dom.js';
import { lang, onLangChange, t } from './i18n.js';
import { verdictBadge } from './checkresult.js';

const PAGE = 20;

export function createHistory(panel, { onOpen }) {
  const form = $('form', panel);
  const list = $('.history-list', panel);
  let offset = 0;
  let page = null;
  let error = null;

  function render() {
    if (listState(list, { error, items: page && page.items, loading: t('common.loading'), empty: t('history.empty') })) return;
    const locale = lang() === 'zh' ? 'zh-CN' : 'en-GB';
    setHtml(list, html`
      <table class="data small history">
        <thead><tr><th>${t('history.time')}</th><th>${t('history.project')}</th><th>${t('history.verdict')}</th><th>${t('history.area')} (${t('unit.mu')})</th></tr></thead>
        <tbody>${page.items.map((c) => html`
          <tr data-check="${c.id}" tabindex="0" title="${t('history.open')}">
            <td>${new Date(c.created_at).toLocaleString(locale)}</td>
            <td>${c.project_name || c.parcel_label || '—'}<br><span class="muted">${c.project_number || ''}</span></td>
            <td>${verdictBadge(c.verdict, 'small')}</td>
            <td class="num">${fmt(c.parcel_area?.mu, 2)}</td>
          </tr>`)}</tbody>
      </table>
      <div class="pager">
        <button type="button" data-page="-1" ${offset === 0 ? html`disabled` : ''}>‹</button>
        <span class="small">${t('history.range', { from: page.total ? offset + 1 : 0, to: offset + page.items.length, total: page.total })}</span>
        <button type="button" data-page="1" ${offset + PAGE >= page.total ? html`disabled` : ''}>›</button>
      </div>`);
  }

  async function load() {
    const data = new FormData(form);
    error = null;
    page = null;
    render();
    try {
      page = await api.get(urls.checks, {
        verdict: data.get('verdict') || null,
        project_number: String(data.get('project_number') || '').trim() || null,
        limit: PAGE,
        offset,
      });
    } catch (err) {
      error = t('history.failed', { message: err.message });
    }
    render();
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    offset = 0;
    load();
  });
  form.addEventListener('change', () => {
    offset = 0;
    load();
  });
  list.addEventListener('click', (e) => {
    const pager = e.target.closest('[data-page]');
    if (pager) {
      offset = Math.max(0, offset + Number(pager.dataset.page) * PAGE);
      load();
      return;
    }
    const row = e.target.closest('[data-check]');
    if (row) onOpen(row.dataset.check);
  });
  list.addEventListener('keydown', (e) => {
    const row = e.target.closest('[data-check]');
    if (row && e.key === 'Enter') onOpen(row.dataset.check);
  });
  onLangChange(render);
  return { reload: load };
}
