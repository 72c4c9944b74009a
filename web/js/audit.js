// 审计日志 (administration): the newest entries of the audit trail (GET /api/v1/audit), filtered by actor,
// action, outcome and local dates, paged; 导出 CSV is a plain link to /api/v1/audit/export.csv with the same
// filters (the session cookie goes with it; the export is itself audited).
import { api, urls, withQuery } from './api.js';
import { $, clearFieldErrors, html, listState, localDateTime, setHtml, showFieldError, startOfLocalDay } from './dom.js';
import { errorText } from './forms.js';
import { onLangChange, t, tOr } from './i18n.js';
import { createPager } from './paging.js';

const PAGE = 50;
/** The actions the platform records (gis_platform, api/routes); the filter also takes any other. */
export const AUDIT_ACTIONS = [
  'auth.login',
  'auth.logout',
  'user.create',
  'user.update',
  'api_key.create',
  'api_key.revoke',
  'audit.export',
  'check.create',
  'check.replay',
  'check.recheck',
  'batch.submit',
  'conflicts.submit',
  'layer.import',
  'report.download',
  'access.denied',
];

export function createAudit(panel) {
  const form = $('form.audit-filters', panel);
  const list = $('.audit-list', panel);
  const csv = $('[data-audit-csv]', panel);
  const actions = $('#audit-actions');
  let page = null;
  let error = null;
  let seq = 0; // only the answer to the latest request is shown

  function renderActions() {
    setHtml(actions, html`${AUDIT_ACTIONS.map((a) => html`<option value="${a}">${t(`audit.act.${a}`)}</option>`)}`);
  }

  /** The filters of the form as API parameters (local dates → the local midnights bounding them); null if invalid. */
  function filters() {
    const data = new FormData(form);
    const text = (name) => String(data.get(name) || '').trim() || null;
    const since = startOfLocalDay(String(data.get('since') || ''));
    const until = startOfLocalDay(String(data.get('until') || ''), 1); // through the end of that day
    clearFieldErrors(panel);
    if (since && until && until <= since) {
      showFieldError(panel, 'dates', t('audit.err.dates'));
      return null;
    }
    return {
      actor: text('actor'),
      action: text('action'),
      outcome: text('outcome'),
      since: since ? since.toISOString() : null,
      until: until ? until.toISOString() : null,
    };
  }

  function actorCell(e) {
    const kind = e.actor_kind && e.actor_kind !== 'user' ? tOr(`audit.kind.${e.actor_kind}`, e.actor_kind) : '';
    return html`${e.actor}${kind ? html`<br><span class="muted small">${kind}</span>` : ''}`;
  }

  function render() {
    if (listState(list, { error, items: page && page.items, loading: t('common.loading'), empty: t('audit.empty') })) return;
    setHtml(list, html`
      <table class="data admin-table audit-table">
        <thead><tr>
          <th>${t('audit.time')}</th><th>${t('audit.actor')}</th><th>${t('audit.role')}</th><th>${t('audit.action')}</th>
          <th>${t('audit.target')}</th><th>${t('audit.outcome')}</th><th>${t('audit.ip')}</th>
        </tr></thead>
        <tbody>${page.items.map((e) => html`
          <tr data-event="${e.id}" data-action="${e.action}" title="${e.details ? JSON.stringify(e.details) : ''}">
            <td class="nowrap" data-col="at">${localDateTime(e.at)}</td>
            <td data-col="actor">${actorCell(e)}</td>
            <td data-col="role">${e.role ? tOr(`role.${e.role}`, e.role) : html`<span class="muted">—</span>`}</td>
            <td data-col="action"><code>${e.action}</code><br><span class="muted small">${tOr(`audit.act.${e.action}`, '')}</span></td>
            <td data-col="target" class="target">${e.target || ''}</td>
            <td data-col="outcome"><span class="state state-${e.outcome}">${tOr(`audit.outcome.${e.outcome}`, e.outcome)}</span></td>
            <td data-col="ip" class="nowrap">${e.ip || ''}</td>
          </tr>`)}</tbody>
      </table>
      ${pager.bar(page.items.length, page.total, (range) => t('audit.range', range))}`);
  }

  async function load() {
    const params = filters();
    if (!params) return;
    csv.href = withQuery(urls.auditCsv, params);
    const mine = ++seq;
    error = null;
    if (!page) render();
    try {
      const answer = await api.get(urls.audit, { ...params, limit: PAGE, offset: pager.offset });
      if (mine !== seq) return;
      page = answer;
    } catch (err) {
      if (mine !== seq) return;
      error = t('admin.failed', { message: errorText(err) });
    }
    render();
  }

  const pager = createPager({ form, list, size: PAGE, load });
  $('[data-action="reset-filters"]', form).addEventListener('click', () => {
    form.reset();
    pager.first();
  });
  renderActions();
  onLangChange(() => {
    renderActions();
    if (page || error) render();
  });

  return { shown: load };
}
