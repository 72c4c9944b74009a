// Forms of the administration view: the server's own words for a refused change, shown next to the input it
// concerns (the API names it: {details: {field}} for an account error, FastAPI's loc for a malformed request),
// and a status line for what a panel just did.
import { ApiError, NetworkError } from './api.js';
import { showFieldError } from './dom.js';
import { t } from './i18n.js';

/** The plain-words text of a failed request: the server's message, an access problem's explanation. */
export function errorText(err) {
  if (err instanceof NetworkError) return t('error.network');
  if (err instanceof ApiError) {
    if (err.isAccessProblem) return err.message;
    return err.status >= 500 ? t('error.server', { message: err.serverMessage }) : err.serverMessage;
  }
  return (err && err.message) || String(err);
}

/** Show err next to its input (data-error-for="<field>") or else in the form's general slot; the field's name. */
export function showApiError(form, err) {
  if (err instanceof ApiError && !err.isAccessProblem && err.status < 500) {
    const field = err.details && err.details.field;
    if (field && showFieldError(form, field, err.serverMessage)) return field;
    const placed = err.fieldErrors.filter((e) => showFieldError(form, e.field, e.message));
    if (placed.length && placed.length === err.fieldErrors.length) return placed[0].field;
  }
  showFieldError(form, 'general', errorText(err));
  return 'general';
}

/** A panel's status line (an element with role="status"): show(text, 'ok' | 'error'), clear(). */
export function statusLine(el) {
  return {
    show(text, kind = 'ok') {
      el.textContent = text;
      el.className = `notice small status-line ${kind}`;
      el.hidden = !text;
    },
    clear() {
      el.textContent = '';
      el.hidden = true;
    },
  };
}
