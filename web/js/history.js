// History of past checks (GET /api/v1/checks): filter, page, reopen one on the map; per check 复核 (replay:
// is the stored result identical when recomputed as recorded?) and 重新核验 (recheck against today's data,
// stored as a new check), with their outcome shown under the check's row.
import { api, urls } from './api.js';
import { can } from './auth.js';
import { $, fmt, html, listState, setHtml } from './dom.js';
import { lang, onLangChange, t } from './i18n.js';
import { verdictBadge } from './checkresult.js';
import { createPager } from './paging.js';
import { createReplayRunner, handleReplayClick, outcomeBlock, replayButtons } from './replay.js';

const PAGE = 20;
const COLUMNS = 4;

export function createHistory(panel, { onOpen }) {
  const form = $('form', panel);
  const list = $('.history-list', panel);
  let page = null;
  let error = null;
  const runner = createReplayRunner({
    onChange: () => render(),
    onRechecked: () => load({ keepPage: true }),
  });

  /** The project, its tags, and the 复核 / 重新核验 buttons under it (a fifth column would not fit the sidebar). */
  function projectCell(c, busy) {
    const tags = [
      c.rechecked_from ? html`<span class="tag recheck" title="${t('replay.recheckOf')} ${c.rechecked_from}">${t('replay.recheckTag')}</span>` : '',
      c.replayable === false ? html`<span class="tag earlier">${t('replay.earlierTag')}</span>` : '',
    ];
    const buttons = replayButtons(c.id, { canRecheck: can('checks:run'), replayable: c.replayable !== false, busy });
    const second = [c.project_name ? c.parcel_label : null, c.project_number].filter(Boolean).join(' · ');
    return html`<span data-title>${c.project_name || c.parcel_label || t('check.unnamed')}</span> ${tags}
      ${second ? html`<br><span class="muted">${second}</span>` : ''}<div class="row-actions">${buttons}</div>`;
  }

  function row(c, locale) {
    const outcome = runner.get(c.id);
    return html`
      <tr data-check="${c.id}" tabindex="0" title="${t('history.open')}">
        <td>${new Date(c.created_at).toLocaleString(locale)}</td>
        <td>${projectCell(c, outcome?.status === 'running')}</td>
        <td>${verdictBadge(c.verdict, 'small')}</td>
        <td class="num">${fmt(c.parcel_area?.mu, 2)}</td>
      </tr>
      ${outcome ? html`<tr class="outcome-row"><td colspan="${COLUMNS}">${outcomeBlock(c.id, outcome)}</td></tr>` : ''}`;
  }

  function render() {
    if (listState(list, { error, items: page && page.items, loading: t('common.loading'), empty: t('history.empty') })) return;
    const locale = lang() === 'zh' ? 'zh-CN' : 'en-GB';
    setHtml(list, html`
      <table class="data small history">
        <thead><tr><th>${t('history.time')}</th><th>${t('history.project')}</th><th>${t('history.verdict')}</th><th>${t('history.area')} (${t('unit.mu')})</th></tr></thead>
        <tbody>${page.items.map((c) => row(c, locale))}</tbody>
      </table>
      ${pager.bar(page.items.length, page.total, (range) => t('history.range', range))}`);
  }

  async function load({ keepPage = false } = {}) {
    const data = new FormData(form);
    error = null;
    if (!keepPage) {
      page = null;
      render();
    }
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
    if (handleReplayClick(e, runner, onOpen) || e.target.closest('.outcome-row')) return;
    const row = e.target.closest('[data-check]');
    if (row) onOpen(row.dataset.check);
  });
  list.addEventListener('keydown', (e) => {
    const row = e.target.closest('[data-check]');
    if (row && e.key === 'Enter' && e.target === row) onOpen(row.dataset.check);
  });
  onLangChange(render);
  return { reload: () => load() };
}
