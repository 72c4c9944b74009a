// Before an uploaded file is checked: what it holds (POST /api/v1/checks/inspect) — its parcels, fields and
// sample values, the use and name fields the server detected — and what each parcel's use resolves to. The user
// picks the use field (or none: the form's use for every parcel), how its values are read and the name field;
// every change asks the server again, so the table shows what the check will use (one resolver, on the server).
import { api, ApiError, NetworkError, urls } from './api.js';
import { html, setHtml } from './dom.js';
import { lang, onLangChange, pick, t } from './i18n.js';

const CLASSIFICATIONS = ['land_use', 'land_survey'];
const NONE = 'none';

function fieldOption(f, detected) {
  const label = pick(f, 'label');
  const named = label && label !== f.name ? `${f.name} ${label}` : f.name;
  const field = named + (f.name === detected ? t('inspect.detected') : '');
  return f.samples.length
    ? t('inspect.option', { field, samples: f.samples.slice(0, 3).join(' / ') })
    : t('inspect.optionEmpty', { field });
}

function className(classification) {
  return t(`inspect.className.${classification}`);
}

/** A parcel's use problem in the current language (from its reason code, never the server's text); `landUses`
 * (code → class from map-config) names the candidates of an ambiguous value. */
export function describeProblem(problem, landUses = new Map()) {
  const names = (problem.candidates || []).map((c) => `${c} ${pick(landUses.get(c)) || ''}`.trim()).join(lang() === 'zh' ? '、' : '; ');
  let text = t(`inspect.reason.${problem.reason}`, { value: problem.value, classification: className(problem.classification), candidates: names });
  if (problem.hint) text += t('inspect.hint', { other: className(problem.hint) });
  return text;
}

/** An error of the upload path (inspect or check) in plain words of the current language, saying what to do. */
export function explainUploadError(err, landUses = new Map()) {
  if (err instanceof NetworkError) return t('error.network');
  if (!(err instanceof ApiError)) return err.message || String(err);
  if (err.isAccessProblem) return err.message;
  const d = err.details || {};
  switch (err.code) {
    case 'land_use_unmapped': {
      const problems = d.problems || [];
      const first = problems[0] || {};
      const more = problems.length > 1 ? t('upload.err.landUseMore', { count: problems.length - 1 }) : '';
      return t('upload.err.landUse', { parcel: first.label || first.parcel, reason: describeProblem(first, landUses) }) + more;
    }
    case 'field_not_found': return t('upload.err.fieldMissing', { field: d.field });
    case 'unknown_land_use': return t('upload.err.landUseCode', { code: d.code ?? '' });
    case 'unsafe_archive': return t('upload.err.unsafeArchive');
    case 'unsupported_format': return t('upload.err.unsupported');
    case 'encoding_undetermined': return t('upload.err.encoding');
    case 'crs_error': return t('upload.err.crs');
    case 'input_file_error': return d.line ? t('upload.err.fileLine', { line: d.line }) : t('upload.err.file');
    case 'geometry_error': return t('upload.err.geometry');
    case 'invalid_parcel':
      if (d.limit_bytes) return t('upload.err.tooLarge', { mb: Math.floor(d.limit_bytes / 1048576) || 1 });
      if (d.limit) return t('upload.err.tooMany', { count: d.parcels, limit: d.limit });
      if (d.parcels === 0) return t('upload.err.empty');
      if (d.bounds) return t('upload.err.outside');
      return t('upload.err.geometry');
    default:
      return err.status >= 500 ? t('error.server', { message: err.code }) : t('upload.err.file');
  }
}

/**
 * The inspection box of the upload pane. `getFile()` gives the chosen File, `getDefaultUse()` the form's land use;
 * `onError(message)` shows a problem next to the file input (null clears it).
 */
export function createFileInspector(box, { getFile, getDefaultUse, onError, landUses = new Map() }) {
  let doc = null;
  let choice = {}; // what the user picked: land_use_field, land_use_classification, label_field
  let busy = false;
  let generation = 0;

  async function inspect() {
    const file = getFile();
    const mine = ++generation;
    if (!file) {
      doc = null;
      render();
      return;
    }
    busy = true;
    render();
    const body = new FormData();
    body.append('file', file, file.name);
    const use = getDefaultUse();
    if (use) body.append('land_use', use);
    for (const [k, v] of Object.entries(choice)) if (v) body.append(k, v);
    try {
      const answer = await api.postForm(urls.checkInspect, body);
      if (mine !== generation) return; // a later choice or file is under way
      doc = answer;
      onError(null);
    } catch (err) {
      if (mine !== generation) return;
      doc = null;
      onError(explainUploadError(err, landUses));
    } finally {
      if (mine === generation) {
        busy = false;
        render();
      }
    }
  }

  function pickedValue(name) {
    if (name === 'land_use_field') return doc.use_field.chosen ?? NONE;
    if (name === 'label_field') return doc.label_field.chosen ?? NONE;
    return doc.use_field.classification || '';
  }

  function parcelRow(p) {
    let use;
    if (p.problem) use = html`<span class="error">${describeProblem(p.problem, landUses)}</span>`;
    else if (p.land_use) {
      use = html`${p.land_use.code} ${pick(p.land_use)}${p.from === 'given' ? t('inspect.fromForm') : ''}${p.verify ? html` <span class="tag minor" title="${t('inspect.verify')}">${t('inspect.verify')}</span>` : ''}`;
    } else use = html`<span class="use-required-text">${t('inspect.noUse')}</span>`;
    return html`<tr data-parcel="${p.number}" class="${p.problem ? 'problem' : ''}">
      <td class="num">${p.number}</td><td>${p.label || '—'}</td><td>${p.value || '—'}</td><td>${use}</td></tr>`;
  }

  function render() {
    if (!getFile()) {
      box.hidden = true;
      setHtml(box, '');
      return;
    }
    box.hidden = false;
    if (!doc) {
      setHtml(box, busy ? html`<p class="muted small">${t('inspect.reading')}</p>` : '');
      return;
    }
    const fields = doc.fields;
    const useDetected = doc.use_field.detected;
    const labelDetected = doc.label_field.detected;
    const summary = t('inspect.summary', { format: t(`inspect.format.${doc.format}`), count: doc.count, crs: doc.source_crs })
      + (doc.encoding ? t('inspect.encoding', { encoding: doc.encoding }) : '');
    setHtml(box, html`
      <p class="small inspect-summary" data-inspect-summary>${summary}${busy ? html` <span class="muted">${t('inspect.reading')}</span>` : ''}</p>
      <label><span>${t('inspect.useField')}</span>
        <select name="land_use_field" data-pick="land_use_field">
          ${fields.map((f) => html`<option value="${f.name}">${fieldOption(f, useDetected)}</option>`)}
          <option value="${NONE}">${t('inspect.useNone')}</option>
        </select></label>
      ${doc.use_field.chosen ? html`<label><span>${t('inspect.readAs')}</span>
        <select name="land_use_classification" data-pick="land_use_classification">
          ${CLASSIFICATIONS.map((c) => html`<option value="${c}">${t(`inspect.class.${c}`)}</option>`)}
        </select></label>` : ''}
      <label><span>${t('inspect.labelField')}</span>
        <select name="label_field" data-pick="label_field">
          ${fields.map((f) => html`<option value="${f.name}">${fieldOption(f, labelDetected)}</option>`)}
          <option value="${NONE}">${t('inspect.labelNone')}</option>
        </select></label>
      ${doc.problems ? html`<p class="error" data-inspect-problems>${t('inspect.problems', { count: doc.problems })}</p>` : ''}
      ${doc.without_use ? html`<p class="notice small use-required-notice" data-inspect-without-use>${t('inspect.withoutUse', { count: doc.without_use })}</p>` : ''}
      <div class="scroll-x inspect-parcels"><table class="data small" data-inspect-parcels>
        <thead><tr><th class="num">${t('inspect.number')}</th><th>${t('inspect.name')}</th><th>${t('inspect.value')}</th><th>${t('inspect.use')}</th></tr></thead>
        <tbody>${doc.parcels.map(parcelRow)}</tbody>
      </table></div>`);
    for (const select of box.querySelectorAll('select[data-pick]')) select.value = pickedValue(select.dataset.pick);
  }

  box.addEventListener('change', (e) => {
    const name = e.target.dataset.pick;
    if (!name || !doc) return;
    choice = {
      land_use_field: pickedValue('land_use_field'),
      land_use_classification: doc.use_field.chosen ? pickedValue('land_use_classification') : null,
      label_field: pickedValue('label_field'),
      [name]: e.target.value,
    };
    if (name === 'land_use_field') choice.land_use_classification = null; // as the new field is listed
    inspect();
  });
  onLangChange(render);

  return {
    /** A new file was chosen: forget the previous picks and look at it. */
    fileChanged() {
      choice = {};
      doc = null;
      inspect();
    },
    /** The form's land use changed: parcels without a use in the file get it. */
    defaultUseChanged: () => (doc ? inspect() : undefined),
    /** The fields to send with the check: what the table showed (nothing when the file could not be read). */
    fieldsForCheck() {
      if (!doc) return {};
      return {
        land_use_field: doc.use_field.chosen ?? NONE,
        land_use_classification: doc.use_field.chosen ? doc.use_field.classification : null,
        label_field: doc.label_field.chosen ?? NONE,
      };
    },
    get doc() {
      return doc;
    },
  };
}
