// DOM helpers: every interpolated value is escaped unless it is already SafeHtml (built by `html`).

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export function esc(value) {
  if (value === null || value === undefined) return '';
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c]);
}

export class SafeHtml {
  constructor(text) {
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

function part(value) {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(part).join('');
  if (value === false || value === null || value === undefined) return '';
  return esc(value);
}

/** Tagged template: html`<td>${userText}</td>` escapes userText; nested html`` passes through. */
export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => {
    out += part(v) + strings[i + 1];
  });
  return new SafeHtml(out);
}

export function setHtml(element, safe) {
  element.innerHTML = part(safe);
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));

/** Show a plain-words message next to the input it belongs to (an element with data-error-for). */
export function showFieldError(root, field, message) {
  const slot = root.querySelector(`[data-error-for="${field}"]`);
  if (!slot) return false;
  slot.textContent = message;
  slot.hidden = !message;
  const input = root.querySelector(`[name="${field}"]`);
  if (input) input.setAttribute('aria-invalid', message ? 'true' : 'false');
  return true;
}

export function clearFieldErrors(root) {
  for (const slot of root.querySelectorAll('[data-error-for]')) {
    slot.textContent = '';
    slot.hidden = true;
  }
  for (const input of root.querySelectorAll('[aria-invalid]')) input.setAttribute('aria-invalid', 'false');
}

/** Number with fixed decimals and thousands separators (display only; values come rounded from the API). */
export function fmt(value, decimals) {
  if (value === null || value === undefined || value === '') return '';
  const n = Number(value);
  if (!Number.isFinite(n)) return String(value);
  return n.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const pad = (n) => String(n).padStart(2, '0');

/** An ISO time from the API as local date and time, `2026-03-05 14:07:09` (the same in both languages). */
export function localDateTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  return `${localDate(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** A Date (or ISO time) as the local calendar day, `2026-03-05` (also the value of an <input type="date">). */
export function localDate(value) {
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value ?? '');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** The local midnight starting the day of an <input type="date"> value (+ days), or null when empty. */
export function startOfLocalDay(value, days = 0) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || '');
  if (!m) return null;
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]) + days);
}

/**
 * The error, loading or empty state of a list, drawn into `element`; true when one was drawn (the caller then
 * has nothing more to draw). `items` is null while loading.
 */
export function listState(element, { error, items, loading, empty }) {
  if (error) setHtml(element, html`<p class="error">${error}</p>`);
  else if (!items) setHtml(element, html`<p class="muted">${loading}</p>`);
  else if (!items.length) setHtml(element, html`<p class="muted empty">${empty}</p>`);
  else return false;
  return true;
}
