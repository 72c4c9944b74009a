// Language: Chinese first (default), English switchable; the choice is kept in localStorage.
import { STRINGS } from './strings.js';

const KEY = 'gis-platform.lang';
const listeners = new Set();
let current = 'zh';
try {
  const saved = window.localStorage.getItem(KEY);
  if (saved === 'en' || saved === 'zh') current = saved;
} catch {
  /* storage unavailable: stay with the default */
}

export function lang() {
  return current;
}

/** The text of `key` in the current language, with {name} placeholders filled from params. */
export function t(key, params) {
  const entry = STRINGS[key];
  let text = entry ? entry[current] ?? entry.zh : key;
  if (params) text = text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
  return text;
}

/** t(key), or fallback when there is no text for key (codes from the API the page does not know yet). */
export function tOr(key, fallback) {
  return Object.hasOwn(STRINGS, key) ? t(key) : fallback;
}

/** The localised member of an API object: pick(layer, 'name') → layer.name_zh or layer.name_en. */
export function pick(obj, base = 'name') {
  if (!obj) return '';
  const other = current === 'zh' ? 'en' : 'zh';
  return obj[`${base}_${current}`] ?? obj[`${base}_${other}`] ?? obj[base] ?? '';
}

export function apply(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
  for (const el of root.querySelectorAll('[data-i18n-aria]')) el.setAttribute('aria-label', t(el.dataset.i18nAria));
  document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
  document.title = t('app.title');
}

export function setLang(next) {
  if (next !== 'zh' && next !== 'en') return;
  current = next;
  try {
    window.localStorage.setItem(KEY, next);
  } catch {
    /* ignore */
  }
  apply();
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) {
  listeners.add(fn);
}
