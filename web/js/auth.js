// Who is using the map, and what they may do: the login screen, the account box in the header and the
// role's permissions (gis_platform/accounts.py ROLE_PERMISSIONS). The session is the HttpOnly cookie the
// API sets on login; the page never sees it, and the password is only ever in the form's input while the
// login request is made (never stored: not in localStorage, not in a variable kept after the request).
import { api, ApiError, markNewSession, NetworkError, urls } from './api.js';
import { $, $$ } from './dom.js';
import { onLangChange, t } from './i18n.js';

/** What an anonymous caller may do when the platform allows anonymous read (GIS_ANONYMOUS_READ). */
export const ANONYMOUS_PERMISSIONS = ['dashboard:read', 'map:read'];

let principal = null; // {kind, name, display_name, role, role_label, permissions}
const listeners = new Set();

export function currentPrincipal() {
  return principal;
}

export function can(permission) {
  return Boolean(principal && principal.permissions.includes(permission));
}

export function onPrincipalChange(fn) {
  listeners.add(fn);
}

/** The principal from GET /auth/me, or from a login answer {user, permissions}, or the anonymous reader. */
export function setPrincipal(next) {
  principal = next;
  for (const fn of listeners) fn(principal);
}

export function anonymousPrincipal() {
  return { kind: 'anonymous', name: '', display_name: '', role: null, role_label: '', permissions: [...ANONYMOUS_PERMISSIONS] };
}

function fromLogin(answer) {
  const user = answer.user || {};
  return {
    kind: 'user',
    name: user.username,
    display_name: user.display_name || '',
    role: user.role,
    role_label: user.role_label || '',
    permissions: Array.isArray(answer.permissions) ? answer.permissions : [],
  };
}

/** GET /auth/me → the principal; null when not logged in (401); other errors are thrown. */
export async function whoAmI() {
  try {
    return await api.get(urls.me);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return null;
    throw err;
  }
}

export function roleLabel(p) {
  if (!p || !p.role) return '';
  const key = `role.${p.role}`;
  const label = t(key);
  return label === key ? p.role_label || p.role : label;
}

/** The header's account box: name and role, 退出登录; or 登录 for the anonymous read-only map. */
export function createAccountBox(box, { onLogin, onLogout }) {
  const name = $('[data-account-name]', box);
  const role = $('[data-account-role]', box);
  const loginButton = $('[data-action="login"]', box);
  const logoutButton = $('[data-action="logout"]', box);

  function render() {
    box.hidden = !principal;
    if (!principal) return;
    const anonymous = principal.kind === 'anonymous';
    name.textContent = anonymous ? t('auth.anonymous') : principal.display_name || principal.name;
    name.title = anonymous ? '' : principal.name;
    role.textContent = anonymous ? '' : roleLabel(principal);
    role.hidden = anonymous;
    loginButton.hidden = !anonymous;
    logoutButton.hidden = anonymous;
    box.dataset.role = principal.role || 'anonymous';
  }

  loginButton.addEventListener('click', () => onLogin());
  logoutButton.addEventListener('click', async () => {
    logoutButton.disabled = true;
    try {
      await onLogout();
    } finally {
      logoutButton.disabled = false;
    }
  });
  onPrincipalChange(render);
  onLangChange(render);
  render();
  return { render };
}

/**
 * The login screen: shown over the page (below the header, whose language switch stays usable) until a
 * login succeeds. show({reason, cancellable}) returns a promise of the new principal (null if cancelled).
 */
export function createLoginScreen(screen) {
  const form = $('form', screen);
  const username = $('input[name="username"]', form);
  const password = $('input[name="password"]', form);
  const submit = $('button[type="submit"]', form);
  const cancel = $('[data-action="cancel-login"]', screen);
  const reasonBox = $('[data-login-reason]', screen);
  const errorBox = $('[data-error-for="login"]', form);
  let pending = null; // {resolve}
  let reasonKey = null;
  let errorText = '';

  function renderTexts() {
    reasonBox.textContent = reasonKey ? t(reasonKey) : '';
    reasonBox.hidden = !reasonKey;
    errorBox.textContent = errorText;
    errorBox.hidden = !errorText;
    submit.textContent = submit.classList.contains('busy') ? t('auth.submitting') : t('auth.submit');
  }

  function setError(text) {
    errorText = text;
    for (const input of [username, password]) input.setAttribute('aria-invalid', text ? 'true' : 'false');
    renderTexts();
  }

  function close(result) {
    screen.hidden = true;
    document.body.classList.remove('login-shown');
    password.value = '';
    const done = pending;
    pending = null;
    if (done) done.resolve(result);
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = username.value.trim();
    if (!name || !password.value) {
      setError(t('auth.empty'));
      (name ? password : username).focus();
      return;
    }
    setError('');
    submit.disabled = true;
    submit.classList.add('busy');
    renderTexts();
    try {
      const answer = await api.post(urls.login, { username: name, password: password.value });
      password.value = '';
      markNewSession();
      const next = fromLogin(answer);
      close(next);
    } catch (err) {
      password.value = '';
      // the server's own words: 用户名或密码错误, 账号已停用, too many attempts (429) …
      if (err instanceof NetworkError) setError(t('error.network'));
      else if (err instanceof ApiError) setError(err.status >= 500 ? t('error.server', { message: err.serverMessage }) : err.serverMessage);
      else setError(err.message || String(err));
      password.focus();
    } finally {
      submit.disabled = false;
      submit.classList.remove('busy');
      renderTexts();
    }
  });
  cancel.addEventListener('click', () => close(null));
  screen.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !cancel.hidden) close(null);
  });
  onLangChange(renderTexts);

  return {
    get shown() {
      return !screen.hidden;
    },
    show({ reason = null, cancellable = false } = {}) {
      reasonKey = reason;
      cancel.hidden = !cancellable;
      if (!pending) setError('');
      renderTexts();
      screen.hidden = false;
      document.body.classList.add('login-shown');
      (username.value ? password : username).focus();
      if (!pending) {
        return new Promise((resolve) => {
          pending = { resolve };
        });
      }
      return new Promise((resolve) => {
        const previous = pending.resolve;
        pending.resolve = (value) => {
          previous(value);
          resolve(value);
        };
      });
    },
  };
}

/** POST /auth/logout (ends the session server-side and clears the cookie). */
export async function logout() {
  await api.post(urls.logout, {});
}

/**
 * Show or hide each control by the permissions it needs: data-requires="a b" needs all of them,
 * data-requires-any="a b" one of them (index.html).
 */
export function applyPermissions(root = document) {
  const list = (value) => value.split(/\s+/).filter(Boolean);
  for (const el of $$('[data-requires]', root)) el.hidden = !list(el.dataset.requires).every((p) => can(p));
  for (const el of $$('[data-requires-any]', root)) el.hidden = !list(el.dataset.requiresAny).some((p) => can(p));
}
