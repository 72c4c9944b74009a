// Paging through a server list (limit / offset): changing or submitting the filter form starts again at the
// first page, the ‹ › buttons under the list move one page, the words between them say which rows are shown.
import { html } from './dom.js';

/** Wire the pager buttons inside `list` (and the filter `form`, if any); `load()` fetches the page at `pager.offset`. */
export function createPager({ form = null, list, size, load }) {
  let offset = 0;
  const go = (to) => {
    offset = Math.max(0, to);
    load();
  };
  if (form) {
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      go(0);
    });
    form.addEventListener('change', () => go(0));
  }
  list.addEventListener('click', (e) => {
    const button = e.target.closest('[data-page]');
    if (button) go(offset + Number(button.dataset.page) * size);
  });
  return {
    get offset() {
      return offset;
    },
    /** Start again at the first page. */
    first: () => go(0),
    /** Move to `to` (0: the first page) without loading: the caller loads next. */
    reset(to = 0) {
      offset = Math.max(0, to);
    },
    /** The ‹ range › bar under a page of `shown` rows out of `total`; `words({from, to, total})` says the range. */
    bar(shown, total, words) {
      return html`
        <div class="pager">
          <button type="button" data-page="-1" ${offset === 0 ? html`disabled` : ''}>‹</button>
          <span class="small" data-range>${words({ from: total ? offset + 1 : 0, to: offset + shown, total })}</span>
          <button type="button" data-page="1" ${offset + size >= total ? html`disabled` : ''}>›</button>
        </div>`;
    },
  };
}
