// 复核 (replay: is the stored result identical when recomputed exactly as recorded?) and 重新核验 (recheck:
// the same parcel against today's data and rules, stored as a new check) of a stored check: the calls, the
// state of each one per check id, and their answers drawn readably (verdict before → after, findings added,
// removed and changed, per-layer area changes in m² / 公顷 / 亩, data versions that changed).
import { api, urls } from './api.js';
import { fmt, html } from './dom.js';
import { lang, pick, t } from './i18n.js';
import { verdictBadge } from './checkresult.js';

/** ±value with thousands separators and fixed decimals ("+1,234.50", "−0.75", "0.00"). */
export function signed(value, decimals) {
  const n = Number(value);
  const text = fmt(Math.abs(n), decimals);
  if (n > 0) return `+${text}`;
  if (n < 0) return `−${text}`;
  return text;
}

const deltaClass = (n) => (n > 0 ? 'up' : n < 0 ? 'down' : '');

/** Runs replays and rechecks and keeps, per check id, the latest outcome: {kind, status, answer | error}. */
export function createReplayRunner({ onChange, onRechecked } = {}) {
  const outcomes = new Map();
  async function run(kind, id) {
    if (outcomes.get(id)?.status === 'running') return;
    outcomes.set(id, { kind, status: 'running' });
    onChange?.(id);
    try {
      const answer = await api.post(kind === 'replay' ? urls.checkReplay(id) : urls.checkRecheck(id));
      outcomes.set(id, { kind, status: 'done', answer });
      if (kind === 'recheck') onRechecked?.(answer);
    } catch (err) {
      outcomes.set(id, { kind, status: 'failed', error: err.message });
    }
    onChange?.(id);
  }
  return {
    run,
    get: (id) => outcomes.get(id),
    close(id) {
      outcomes.delete(id);
      onChange?.(id);
    },
  };
}

/**
 * Handle a click inside a view that shows replay buttons (data-replay / data-recheck = check id), links to a
 * check (data-open-check) and outcome close buttons (data-close-outcome); true when the click was one of them.
 */
export function handleReplayClick(event, runner, onOpen) {
  const target = event.target.closest('[data-replay], [data-recheck], [data-open-check], [data-close-outcome]');
  if (!target || target.disabled) return Boolean(target);
  event.stopPropagation();
  const { replay, recheck, openCheck, closeOutcome } = target.dataset;
  if (replay) runner.run('replay', replay);
  else if (recheck) runner.run('recheck', recheck);
  else if (openCheck) onOpen?.(openCheck);
  else if (closeOutcome) runner.close(closeOutcome);
  return true;
}

/** The 复核 / 重新核验 buttons of one check (the recheck only for whoever may run checks). */
export function replayButtons(id, { canRecheck, replayable = true, busy = false }) {
  return html`<span class="replay-buttons">
    <button type="button" class="mini" data-replay="${id}" title="${t('replay.replayTitle')}" ${busy ? html`disabled` : ''}>${t('replay.replay')}</button>
    ${canRecheck ? html`<button type="button" class="mini" data-recheck="${id}" title="${replayable ? t('replay.recheckTitle') : t('replay.notReplayable')}" ${busy || !replayable ? html`disabled` : ''}>${t('replay.recheck')}</button>` : ''}
  </span>`;
}

const message = (f) => (lang() === 'en' ? f.message_en || f.message_zh : f.message_zh);

function findingLine(f, names) {
  return html`<li class="finding-change" data-rule="${f.rule_id}">${verdictBadge(f.level, 'small')}
    <strong>${names.get(f.layer_code) || f.layer_code}</strong> <span class="num">${fmt(f.area?.m2, 2)} m²</span>
    <span class="rule">${f.rule_id}</span>
    <div class="small muted">${message(f)}</div></li>`;
}

function findingsBlock(findings, names) {
  const { added, removed, changed } = findings;
  if (!added.length && !removed.length && !changed.length) return html`<p class="small muted">${t('replay.noFindingChanges')}</p>`;
  return html`
    ${added.length ? html`<h5>${t('replay.findingsAdded')}</h5><ul class="changes added">${added.map((f) => findingLine(f, names))}</ul>` : ''}
    ${removed.length ? html`<h5>${t('replay.findingsRemoved')}</h5><ul class="changes removed">${removed.map((f) => findingLine(f, names))}</ul>` : ''}
    ${changed.length ? html`<h5>${t('replay.findingsChanged')}</h5><ul class="changes changed">${changed.map((c) => html`
      <li class="finding-change" data-rule="${c.rule_id}">${verdictBadge(c.before.level, 'small')} → ${verdictBadge(c.after.level, 'small')}
        <strong>${names.get(c.after.layer_code) || c.after.layer_code}</strong> <span class="rule">${c.rule_id}</span>
        <div class="small"><span class="num">${fmt(c.before.area.m2, 2)}</span> → <span class="num">${fmt(c.after.area.m2, 2)}</span> m²
          (<span class="num ${deltaClass(c.after.area.m2 - c.before.area.m2)}">${signed(c.after.area.m2 - c.before.area.m2, 2)}</span>)</div></li>`)}</ul>` : ''}`;
}

function layersBlock(layers) {
  const changed = layers.filter((l) => l.changed);
  const others = layers.length - changed.length;
  if (!changed.length) return html`<p class="small muted">${t('replay.noLayerChanges')}</p>`;
  const figure = (area) => (area ? fmt(area.m2, 2) : '—');
  return html`<table class="data small layer-deltas">
      <thead><tr><th class="num">Δ m²</th><th class="num">Δ ${t('unit.hectare')}</th><th class="num">Δ ${t('unit.mu')}</th></tr></thead>
      <tbody>${changed.map((l) => html`<tr class="layer-name-row" data-layer-name="${l.code}"><th colspan="3">${pick(l) || l.code}
          <span class="muted was">${t('replay.beforeAfter', { before: figure(l.before), after: figure(l.after) })}</span></th></tr>
        <tr data-layer="${l.code}">
        <td class="num ${deltaClass(l.delta.m2)}" data-unit="m2">${signed(l.delta.m2, 2)}</td>
        <td class="num ${deltaClass(l.delta.hectare)}" data-unit="hectare">${signed(l.delta.hectare, 4)}</td>
        <td class="num ${deltaClass(l.delta.mu)}" data-unit="mu">${signed(l.delta.mu, 2)}</td></tr>`)}</tbody>
    </table>${others ? html`<p class="small muted">${t('replay.unchangedLayers', { n: others })}</p>` : ''}`;
}

function versionLabel(v) {
  if (!v) return '—';
  return v.version_no ? `v${v.version_no}` : `id ${v.id}`;
}

/** What changed between the stored check and the recomputed or new one. */
export function changesBlock(changes, caption = '') {
  const v = changes.verdict;
  const names = new Map(changes.layers.map((l) => [l.code, pick(l)]));
  return html`<div class="changes-view">
    ${caption ? html`<p class="small muted caption">${caption}</p>` : ''}
    <p class="verdict-change"><span class="label">${t('replay.verdict')}</span> ${verdictBadge(v.before)} → ${verdictBadge(v.after)}
      ${v.changed ? '' : html`<span class="muted small">${t('replay.unchanged')}</span>`}</p>
    ${findingsBlock(changes.findings, names)}
    <h5>${t('replay.layers')}</h5>
    ${layersBlock(changes.layers)}
    ${changes.versions.length ? html`<h5>${t('replay.versions')}</h5><ul class="changes versions">${changes.versions.map((c) => html`
      <li data-version="${c.code}">${names.get(c.code) || c.code} <code>${c.code}</code> ${versionLabel(c.before)} → ${versionLabel(c.after)}</li>`)}</ul>` : ''}
    ${changes.catalog_changed || changes.rules_changed ? html`<p class="small muted">${[changes.catalog_changed && t('replay.catalogChanged'), changes.rules_changed && t('replay.rulesChanged')].filter(Boolean).join(lang() === 'zh' ? '；' : '; ')}</p>` : ''}
  </div>`;
}

function shortValue(value) {
  if (value === null || value === undefined) return '—';
  if (typeof value === 'number') return fmt(value, Number.isInteger(value) ? 0 : 2);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
}

function replayBody(answer) {
  if (answer.status === 'identical') return html`<p class="outcome-status ok" data-status="identical">✓ ${t('replay.identical')}</p>`;
  if (answer.status === 'earlier_method') {
    const text = answer.method ? t('replay.earlierMethod', { method: answer.method, current: answer.current_method }) : t('replay.earlierNoRecord');
    return html`<p class="outcome-status earlier" data-status="earlier_method">${text}</p>`;
  }
  return html`<p class="outcome-status bad" data-status="different">✗ ${t('replay.different', { n: answer.differences_total })}</p>
    ${changesBlock(answer.changes, t('replay.storedToRecomputed'))}
    <details class="differences"><summary>${t('replay.differences', { n: answer.differences_total })}</summary>
      <ul>${answer.differences.map((d) => html`<li><code>${d.path}</code>: ${shortValue(d.before)} → ${shortValue(d.after)}</li>`)}</ul></details>`;
}

function recheckBody(answer) {
  const fresh = answer.check;
  return html`<p class="outcome-status info" data-status="rechecked">${t('replay.rechecked')}
      <button type="button" class="link" data-open-check="${fresh.id}">${t('replay.openNew')}</button></p>
    ${changesBlock(answer.changes, t('replay.originalToToday'))}`;
}

/** The outcome of a replay or recheck of check `id` (running, failed or its answer), with a close button. */
export function outcomeBlock(id, outcome) {
  if (!outcome) return '';
  const title = outcome.kind === 'replay' ? t('replay.replay') : t('replay.recheck');
  let body;
  if (outcome.status === 'running') body = html`<p class="muted">${outcome.kind === 'replay' ? t('replay.running') : t('replay.rechecking')}</p>`;
  else if (outcome.status === 'failed') body = html`<p class="error">${t('replay.failed', { message: outcome.error })}</p>`;
  else body = outcome.kind === 'replay' ? replayBody(outcome.answer) : recheckBody(outcome.answer);
  return html`<section class="replay-outcome" data-outcome="${outcome.kind}" data-outcome-of="${id}" data-state="${outcome.status}">
    <header><strong>${title}</strong><button type="button" class="icon" data-close-outcome="${id}" aria-label="${t('replay.close')}" title="${t('replay.close')}">×</button></header>
    ${body}</section>`;
}
