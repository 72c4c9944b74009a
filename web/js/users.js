// 用户 (administration): the people's accounts — list, add, change the role, disable / enable, reset the
// password (GET/POST /api/v1/users, PATCH /api/v1/users/{username}). The server checks the password's strength
// and answers 422 with its reason, shown next to the input; a password is only in its input while sent.
import { api, urls } from './api.js';
import { currentPrincipal, roleLabel } from './auth.js';
import { $, clearFieldErrors, html, listState, localDateTime, setHtml, showFieldError } from './dom.js';
import { errorText, showApiError, statusLine } from './forms.js';
import { onLangChange, t } from './i18n.js';

const ROLES = ['admin', 'planner', 'viewer'];

const same = (a, b) => String(a || '').toLowerCase() === String(b || '').toLowerCase();

export function createUsers(panel) {
  const list = $('.users-list', panel);
  const form = $('form[data-form="new-user"]', panel);
  const submit = $('button[type="submit"]', form);
  const status = statusLine($('[data-admin-status]', panel));
  let users = null;
  let error = null;
  let resetFor = null; // the username whose password form is open
  let fresh = null; // the username just added (highlighted)

  const isSelf = (u) => {
    const me = currentPrincipal();
    return Boolean(me && me.kind === 'user' && same(me.name, u.username));
  };

  function resetRow(u) {
    return html`
      <tr class="reset-row" data-reset-for="${u.username}">
        <td colspan="6">
          <form data-form="reset-password" novalidate autocomplete="off">
            <label><span>${t('users.newPassword', { name: u.username })}</span>
              <input name="password" type="password" maxlength="256" autocomplete="new-password"></label>
            <button type="submit" class="primary">${t('users.savePassword')}</button>
            <button type="button" class="secondary" data-action="cancel-reset">${t('users.cancel')}</button>
            <p class="error" data-error-for="password" role="alert" hidden></p>
            <p class="error" data-error-for="general" role="alert" hidden></p>
          </form>
        </td>
      </tr>`;
  }

  function row(u) {
    const self = isSelf(u);
    const lock = self ? html`disabled title="${t('users.self')}"` : '';
    return html`
      <tr data-user="${u.username}" class="${[u.is_active ? '' : 'inactive', same(u.username, fresh) ? 'fresh' : ''].join(' ').trim()}">
        <td><code>${u.username}</code>${self ? html` <span class="muted small">${t('users.you')}</span>` : ''}</td>
        <td data-col="display_name">${u.display_name || '—'}</td>
        <td>
          <select data-field="role" aria-label="${t('users.role')}" ${lock}>
            ${ROLES.map((r) => html`<option value="${r}" ${r === u.role ? html`selected` : ''}>${roleLabel({ role: r, role_label: r })}</option>`)}
          </select>
        </td>
        <td data-col="status"><span class="state state-${u.is_active ? 'active' : 'disabled'}">${t(u.is_active ? 'users.active' : 'users.disabled')}</span></td>
        <td data-col="last_login" class="nowrap">${u.last_login_at ? localDateTime(u.last_login_at) : html`<span class="muted">${t('admin.never')}</span>`}</td>
        <td class="actions">
          <button type="button" data-action="toggle-active" ${lock}>${t(u.is_active ? 'users.disable' : 'users.enable')}</button>
          <button type="button" data-action="reset-password">${t('users.resetPassword')}</button>
        </td>
      </tr>
      ${same(resetFor, u.username) ? resetRow(u) : ''}`;
  }

  function render() {
    if (listState(list, { error, items: users, loading: t('common.loading'), empty: t('users.empty') })) return;
    setHtml(list, html`
      <table class="data admin-table users-table">
        <thead><tr>
          <th>${t('users.username')}</th><th>${t('users.displayName')}</th><th>${t('users.role')}</th>
          <th>${t('users.status')}</th><th>${t('users.lastLogin')}</th><th>${t('users.actions')}</th>
        </tr></thead>
        <tbody>${users.map(row)}</tbody>
      </table>`);
    const open = resetFor && $('form[data-form="reset-password"] input[name="password"]', list);
    if (open) open.focus();
  }

  async function load() {
    error = null;
    try {
      users = (await api.get(urls.users)).users;
    } catch (err) {
      error = t('admin.failed', { message: errorText(err) });
    }
    render();
  }

  /** PATCH one user; the list is reloaded afterwards. Returns true when the change was made. */
  async function change(username, body, done, controls = []) {
    for (const c of controls) c.disabled = true;
    try {
      await api.patch(urls.user(username), body);
      status.show(done);
      await load();
      return true;
    } catch (err) {
      status.show(t('users.changeFailed', { message: errorText(err) }), 'error');
      render(); // puts the role select back to what the server has
      return false;
    } finally {
      for (const c of controls) c.disabled = false;
    }
  }

  const userOf = (el) => {
    const tr = el.closest('[data-user], [data-reset-for]');
    const name = tr && (tr.dataset.user ?? tr.dataset.resetFor);
    return users && users.find((u) => u.username === name);
  };

  list.addEventListener('click', (e) => {
    const button = e.target.closest('button[data-action]');
    const u = button && userOf(button);
    if (!u) return;
    if (button.dataset.action === 'toggle-active') {
      if (u.is_active && !window.confirm(t('users.confirmDisable', { name: u.username }))) return;
      const done = t(u.is_active ? 'users.disabledDone' : 'users.enabledDone', { name: u.username });
      change(u.username, { is_active: !u.is_active }, done, [button]);
    } else if (button.dataset.action === 'reset-password') {
      resetFor = same(resetFor, u.username) ? null : u.username;
      render();
    } else if (button.dataset.action === 'cancel-reset') {
      resetFor = null;
      render();
    }
  });

  list.addEventListener('change', (e) => {
    const select = e.target.closest('select[data-field="role"]');
    const u = select && userOf(select);
    if (!u || select.value === u.role) return;
    const role = roleLabel({ role: select.value, role_label: select.value });
    if (!window.confirm(t('users.confirmRole', { name: u.username, role }))) {
      select.value = u.role;
      return;
    }
    change(u.username, { role: select.value }, t('users.roleDone', { name: u.username, role }), [select]);
  });

  list.addEventListener('submit', async (e) => {
    const resetForm = e.target.closest('form[data-form="reset-password"]');
    if (!resetForm) return;
    e.preventDefault();
    const u = userOf(resetForm);
    const input = $('input[name="password"]', resetForm);
    clearFieldErrors(resetForm);
    if (!u) return;
    if (!input.value) {
      showFieldError(resetForm, 'password', t('admin.required'));
      input.focus();
      return;
    }
    const buttons = [...resetForm.querySelectorAll('button')];
    for (const b of buttons) b.disabled = true;
    try {
      await api.patch(urls.user(u.username), { password: input.value });
      input.value = '';
      resetFor = null;
      status.show(t('users.passwordDone', { name: u.username }));
      await load();
    } catch (err) {
      input.value = '';
      showApiError(resetForm, err);
      input.focus();
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    status.clear();
    const data = new FormData(form);
    const username = String(data.get('username') || '').trim();
    const password = String(data.get('password') || '');
    const missing = [!username && 'username', !password && 'password'].filter(Boolean);
    if (missing.length) {
      for (const field of missing) showFieldError(form, field, t('admin.required'));
      $(`[name="${missing[0]}"]`, form).focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = t('users.creating');
    try {
      const user = await api.post(urls.users, {
        username,
        password,
        role: data.get('role'),
        display_name: String(data.get('display_name') || '').trim() || null,
      });
      form.reset();
      fresh = user.username;
      status.show(t('users.created', { name: user.username }));
      await load();
    } catch (err) {
      const field = showApiError(form, err);
      const input = $(`[name="${field}"]`, form);
      if (input) input.focus();
    } finally {
      $('input[name="password"]', form).value = '';
      submit.disabled = false;
      submit.textContent = t('users.create');
    }
  });

  onLangChange(() => {
    if (users || error) render();
  });

  return { shown: load };
}
