// API 密钥 (administration): keys for approval systems — list, create, revoke (GET/POST /api/v1/api-keys,
// DELETE /api/v1/api-keys/{prefix}). The secret comes once, in the answer to the POST: it is shown in a
// read-only box with a copy button until the administrator closes it, and is kept nowhere else.
import { api, urls } from './api.js';
import { $, clearFieldErrors, html, listState, localDate, localDateTime, setHtml, showFieldError } from './dom.js';
import { errorText, showApiError, statusLine } from './forms.js';
import { onLangChange, t, tOr } from './i18n.js';

/** What a key may be granted: the approval role's permissions (gis_platform/accounts.py API_KEY_SCOPES). */
export const API_KEY_SCOPES = ['map:read', 'checks:read', 'checks:run', 'reports:read', 'batch:run'];
const DEFAULT_DAYS = 365;

const scopeLabel = (s) => tOr(`perm.${s}`, s);

function daysFromToday(days) {
  const d = new Date();
  d.setDate(d.getDate() + days);
  return localDate(d);
}

/** The end of the chosen local day (a key "valid until 2027-03-05" works through that day). */
function endOfLocalDay(value) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
  return m ? new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59) : null;
}

export function createApiKeys(panel) {
  const list = $('.keys-list', panel);
  const form = $('form[data-form="new-key"]', panel);
  const submit = $('button[type="submit"]', form);
  const status = statusLine($('[data-admin-status]', panel));
  const secretBox = $('[data-secret-box]', panel);
  const secretInput = $('input[name="secret"]', secretBox);
  const copyStatus = $('[data-copy-status]', secretBox);
  const expires = $('input[name="expires_at"]', form);
  let keys = null;
  let error = null;
  let fresh = null; // the prefix just created (highlighted)

  setHtml($('[data-scopes]', form), html`${API_KEY_SCOPES.map((s) => html`
    <label class="check"><input type="checkbox" name="scopes" value="${s}" checked>
      <span data-i18n="perm.${s}">${scopeLabel(s)}</span> <code class="muted">${s}</code></label>`)}`);

  function resetForm() {
    form.reset();
    expires.min = daysFromToday(1);
    expires.value = daysFromToday(DEFAULT_DAYS);
  }
  resetForm();

  function row(k) {
    return html`
      <tr data-key="${k.prefix}" class="${[`key-${k.status}`, k.prefix === fresh ? 'fresh' : ''].join(' ').trim()}">
        <td class="nowrap"><code>${k.prefix}</code></td>
        <td>${k.name}<br><span class="muted small">${t('keys.createdBy', { who: k.created_by || '—', when: localDate(k.created_at) })}</span></td>
        <td data-col="scopes">${(k.scopes || []).map((s) => html`<span class="chip" title="${scopeLabel(s)}">${s}</span>`)}</td>
        <td data-col="status"><span class="state state-${k.status}">${tOr(`keys.status.${k.status}`, k.status)}</span></td>
        <td data-col="expires" class="nowrap">${k.expires_at ? localDateTime(k.expires_at) : html`<span class="muted">${t('keys.noExpiry')}</span>`}</td>
        <td class="num">${k.rate_limit_per_minute === null || k.rate_limit_per_minute === undefined ? html`<span class="muted">${t('keys.defaultLimit')}</span>` : k.rate_limit_per_minute === 0 ? t('keys.unlimited') : k.rate_limit_per_minute}</td>
        <td data-col="last_used" class="nowrap">${k.last_used_at ? localDateTime(k.last_used_at) : html`<span class="muted">${t('admin.never')}</span>`}</td>
        <td class="actions">${k.status === 'revoked' ? '' : html`<button type="button" data-action="revoke">${t('keys.revoke')}</button>`}</td>
      </tr>`;
  }

  function render() {
    if (listState(list, { error, items: keys, loading: t('common.loading'), empty: t('keys.empty') })) return;
    // the newest first; revoked ones last
    const order = [...keys].sort((a, b) => (a.status === 'revoked') - (b.status === 'revoked') || b.id - a.id);
    setHtml(list, html`
      <table class="data admin-table keys-table">
        <thead><tr>
          <th>${t('keys.prefix')}</th><th>${t('keys.keyName')}</th><th>${t('keys.scopes')}</th><th>${t('keys.status')}</th>
          <th>${t('keys.expiresAt')}</th><th class="num">${t('keys.limit')}</th><th>${t('keys.lastUsed')}</th><th></th>
        </tr></thead>
        <tbody>${order.map(row)}</tbody>
      </table>`);
  }

  async function load() {
    error = null;
    try {
      keys = (await api.get(urls.apiKeys)).api_keys;
    } catch (err) {
      error = t('admin.failed', { message: errorText(err) });
    }
    render();
  }

  function showSecret(secret) {
    secretInput.value = secret;
    copyStatus.textContent = '';
    secretBox.hidden = false;
    secretBox.scrollIntoView({ block: 'nearest' });
    secretInput.focus();
    secretInput.select();
  }

  function closeSecret() {
    secretInput.value = '';
    copyStatus.textContent = '';
    secretBox.hidden = true;
  }

  $('[data-action="copy-secret"]', secretBox).addEventListener('click', async () => {
    let copied = false;
    try {
      await navigator.clipboard.writeText(secretInput.value);
      copied = true;
    } catch {
      secretInput.focus();
      secretInput.select();
      try {
        copied = document.execCommand('copy');
      } catch {
        copied = false;
      }
    }
    copyStatus.textContent = t(copied ? 'keys.copied' : 'keys.copyFailed');
    copyStatus.className = copied ? 'small ok' : 'small error';
  });
  $('[data-action="close-secret"]', secretBox).addEventListener('click', closeSecret);

  list.addEventListener('click', async (e) => {
    const button = e.target.closest('button[data-action="revoke"]');
    const tr = button && button.closest('[data-key]');
    const key = tr && keys && keys.find((k) => k.prefix === tr.dataset.key);
    if (!key) return;
    if (!window.confirm(t('keys.confirmRevoke', { prefix: key.prefix, name: key.name }))) return;
    button.disabled = true;
    try {
      await api.del(urls.apiKey(key.prefix));
      status.show(t('keys.revoked', { prefix: key.prefix }));
      await load();
    } catch (err) {
      status.show(t('users.changeFailed', { message: errorText(err) }), 'error');
      button.disabled = false;
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    status.clear();
    const data = new FormData(form);
    const name = String(data.get('name') || '').trim();
    const scopes = data.getAll('scopes').map(String);
    const until = endOfLocalDay(String(data.get('expires_at') || ''));
    const limitText = String(data.get('rate_limit_per_minute') || '').trim();
    const limit = limitText === '' ? null : Number(limitText);
    const problems = [];
    if (!name) problems.push(['name', t('admin.required')]);
    if (!scopes.length) problems.push(['scopes', t('keys.err.scopes')]);
    if (until && until <= new Date()) problems.push(['expires_at', t('keys.err.past')]);
    if (limit !== null && !(Number.isInteger(limit) && limit >= 0)) problems.push(['rate_limit_per_minute', t('keys.err.rateLimit')]);
    if (problems.length) {
      for (const [field, message] of problems) showFieldError(form, field, message);
      const first = $(`[name="${problems[0][0]}"]`, form);
      if (first) first.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t('keys.creating');
    try {
      const answer = await api.post(urls.apiKeys, {
        name,
        scopes,
        expires_at: until ? until.toISOString() : null,
        rate_limit_per_minute: limit,
      });
      fresh = answer.prefix;
      resetForm();
      showSecret(answer.secret);
      await load();
    } catch (err) {
      showApiError(form, err);
    } finally {
      submit.disabled = false;
      submit.textContent = t('keys.create');
    }
  });

  onLangChange(() => {
    if (keys || error) render();
  });

  return { shown: load };
}
