// Search box: townships, patch / parcel codes, project numbers → zoom to the result.
import { api, isAbort, urls } from './api.js';
import { debounce, html, setHtml } from './dom.js';
import { pick, t } from './i18n.js';
import { L } from './vendor.js';

const KIND_KEYS = { township: 'search.kind.township', feature: 'search.kind.feature', patch: 'search.kind.feature', check: 'search.kind.check', project: 'search.kind.check' };

export function createSearch(map, tree, config, form, { onCheck } = {}) {
  const input = form.querySelector('input');
  const list = form.querySelector('.search-results');
  let results = [];
  let controller = null;
  let active = -1;
  let highlight = null;

  function hide() {
    list.hidden = true;
    active = -1;
  }

  function render(message) {
    if (message) {
      setHtml(list, html`<li class="muted">${message}</li>`);
      list.hidden = false;
      return;
    }
    setHtml(list, results.map((r, i) => html`
      <li role="option" data-index="${i}" class="${i === active ? 'active' : ''}">
        <span class="kind">${t(KIND_KEYS[r.kind] || 'search.kind.other')}</span>
        <span class="label">${r.label}</span>
        <span class="muted small">${r.layer ? pick(config.layers.get(r.layer)) || r.layer : ''}</span>
      </li>`));
    list.hidden = false;
  }

  const run = debounce(async (q) => {
    if (controller) controller.abort();
    if (!q.trim()) {
      hide();
      return;
    }
    controller = new AbortController();
    try {
      const answer = await api.get(urls.search, { q: q.trim() }, { signal: controller.signal });
      results = Array.isArray(answer) ? answer : answer.results || answer.items || [];
      active = results.length ? 0 : -1;
      render(results.length ? null : t('search.none'));
    } catch (err) {
      if (!isAbort(err)) render(t('search.failed', { message: err.message }));
    }
  }, 250);

  function choose(result) {
    hide();
    if (!result) return;
    input.value = result.label;
    if (result.layer && tree.layer(result.layer) && !tree.visibleCodes().includes(result.layer)) tree.setVisible(result.layer, true);
    if (Array.isArray(result.bbox) && result.bbox.length === 4) {
      const [x0, y0, x1, y1] = result.bbox.map(Number);
      const bounds = L.latLngBounds([[y0, x0], [y1, x1]]);
      if (highlight) highlight.remove();
      highlight = L.rectangle(bounds, { color: '#0050B3', weight: 2, fill: false, dashArray: '4 4', pane: 'highlight', interactive: false }).addTo(map);
      setTimeout(() => highlight && highlight.remove(), 6000);
      map.fitBounds(bounds, { maxZoom: 17, padding: [40, 40] });
    }
    if ((result.kind === 'check' || result.kind === 'project') && result.id && onCheck) onCheck(result.id);
  }

  input.addEventListener('input', () => run(input.value));
  input.addEventListener('keydown', (e) => {
    if (list.hidden || !results.length) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + results.length) % results.length;
      render();
    } else if (e.key === 'Escape') {
      hide();
    }
  });
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    if (results.length) choose(results[Math.max(active, 0)]);
    else run(input.value);
  });
  list.addEventListener('mousedown', (e) => {
    const li = e.target.closest('[data-index]');
    if (li) {
      e.preventDefault();
      choose(results[Number(li.dataset.index)]);
    }
  });
  input.addEventListener('blur', () => setTimeout(hide, 150));
  return { choose };
}
