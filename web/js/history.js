// History of past checks (GET /api/v1/checks): filter, page, reopen one on the map.
import { api, urls } from './api.js';
import { $, fmt, html, listState, setHtml } from './dom.js';
import { lang, onLangChange, t } from './i18n.js';
import { verdictBadge } from './checkresult.js';
import { createPager } from './paging.js';

const PAGE = 20;

export function createHistory(panel, { onOpen }) {
  const form = $('form', panel);
  const list = $('.history-list', panel);
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
            <td data-title>${c.project_name || c.parcel_label || t('check.unnamed')}<br><span class="muted">${[c.project_name ? c.parcel_label : null, c.project_number].filter(Boolean).join(' · ')}</span></td>
            <td>${verdictBadge(c.verdict, 'small')}</td>
            <td class="num">${fmt(c.parcel_area?.mu, 2)}</td>
          </tr>`)}</tbody>
      </table>
      ${pager.bar(page.items.length, page.total, (range) => t('history.range', range))}`);
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
        offset: pager.offset,
      });
    } catch (err) {
      error = t('history.failed', { message: err.message });
    }
    render();
  }

  const pager = createPager({ form, list, size: PAGE, load });
  list.addEventListener('click', (e) => {
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
