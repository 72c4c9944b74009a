// The check workflow: draw, upload or paste a parcel, choose the proposed land use, run the check,
// show the result; API errors are shown in plain words next to the input that caused them. An uploaded file is
// inspected first (inspect.js): the user sees its parcels and picks the fields their use and name come from.
import { api, ApiError, NetworkError, urls } from './api.js';
import { can } from './auth.js';
import { checkGeometryArea } from './measure.js';
import { $, $$, clearFieldErrors, debounce, html, setHtml, showFieldError } from './dom.js';
import { CoordinateError, parseCoordinates } from './coords.js';
import { createCheckOverlay, renderCheck } from './checkresult.js';
import { createFileInspector, explainUploadError } from './inspect.js';
import { onLangChange, pick, t } from './i18n.js';
import { setMode } from './mode.js';
import { createReplayRunner, handleReplayClick, outcomeBlock, replayButtons } from './replay.js';

const GEOMETRY_ERRORS = new Set(['invalid_parcel', 'crs_error', 'geometry_error', 'input_file_error', 'unsupported_format', 'unsafe_archive', 'encoding_undetermined', 'land_use_unmapped', 'field_not_found']);
const LAND_USE_CODE = /^\d{2}(\d{2}){0,2}$/;

export function createCheckPanel(map, config, renderer, panel, { onChecked } = {}) {
  const form = $('form', panel);
  const resultBox = $('.check-output', panel);
  const overlay = createCheckOverlay(map, config, renderer);
  let inputMode = 'draw';
  let drawn = null; // Leaflet polygon drawn on the map
  let shown = null; // {check, siblings}

  // land uses from map-config when it serves them; otherwise a free code the API validates
  const datalist = $('#landuse-list');
  const landUses = new Map();
  if (Array.isArray(config.landUses)) {
    const walk = (items) => items.forEach((c) => {
      landUses.set(c.code, c);
      if (Array.isArray(c.children)) walk(c.children);
    });
    walk(config.landUses);
    if (datalist) setHtml(datalist, [...landUses.values()].map((c) => html`<option value="${c.code}">${c.code} ${pick(c)}</option>`));
  }
  const landUseInput = $('input[name="land_use"]', form);

  function selectMode(next) {
    inputMode = next;
    for (const tab of $$('[data-input-mode]', panel)) tab.setAttribute('aria-selected', String(tab.dataset.inputMode === next));
    for (const pane of $$('[data-input-pane]', panel)) pane.hidden = pane.dataset.inputPane !== next;
    for (const el of $$('[data-upload-only]', panel)) el.hidden = next !== 'upload';
    clearFieldErrors(form);
  }
  for (const tab of $$('[data-input-mode]', panel)) tab.addEventListener('click', () => selectMode(tab.dataset.inputMode));
  const fileInput = $('input[name="file"]', form);
  const fileName = $('[data-file-name]', form);
  const describeFile = () => {
    fileName.textContent = fileInput.files && fileInput.files[0] ? fileInput.files[0].name : t('check.noFileChosen');
  };
  const inspector = createFileInspector($('[data-inspect]', panel), {
    getFile: () => (fileInput.files && fileInput.files[0]) || null,
    getDefaultUse: () => {
      const code = landUseInput.value.trim();
      return LAND_USE_CODE.test(code) ? code : null;
    },
    onError: (message) => showFieldError(form, 'file', message || ''),
    landUses,
  });
  fileInput.addEventListener('change', () => {
    describeFile();
    inspector.fileChanged();
  });
  const useChanged = debounce(() => {
    if (inputMode === 'upload') inspector.defaultUseChanged();
  }, 400);
  landUseInput.addEventListener('input', useChanged);
  describeFile();

  // drawing with leaflet-geoman
  const drawStatus = $('[data-draw-status]', panel);
  function describeDrawn() {
    if (!drawn) {
      drawStatus.textContent = t('check.drawHint');
      return;
    }
    const area = checkGeometryArea(drawn.toGeoJSON(false).geometry);
    drawStatus.textContent = t('check.drawn', { m2: area.m2.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }), mu: area.mu.toFixed(2) });
  }
  $('[data-action="draw"]', panel).addEventListener('click', () => {
    if (drawn) drawn.remove();
    drawn = null;
    setMode('draw-parcel');
    map.pm.enableDraw('Polygon', { snappable: false, templineStyle: { color: '#0050B3' }, hintlineStyle: { color: '#0050B3', dashArray: '5 5' }, pathOptions: { color: '#0050B3', weight: 3, fillOpacity: 0.1 } });
    drawStatus.textContent = t('check.drawing');
  });
  $('[data-action="clear"]', panel).addEventListener('click', () => {
    map.pm.disableDraw();
    if (drawn) drawn.remove();
    drawn = null;
    overlay.clear();
    setMode('identify');
    describeDrawn();
  });
  map.on('pm:create', (e) => {
    if (e.shape !== 'Polygon' || e.layer.options.measure) return;
    drawn = e.layer;
    drawn.options.parcel = true;
    setMode('identify');
    describeDrawn();
    drawn.on('pm:edit', describeDrawn);
  });
  map.on('pm:drawend', () => {
    if (!drawn) setMode('identify');
  });

  function fieldFor(err) {
    if (err instanceof NetworkError) return 'general';
    if (err instanceof ApiError) {
      if (err.code === 'unknown_land_use') return 'land_use';
      const fe = err.fieldErrors.find((f) => f.field);
      if (fe) {
        if (fe.field.startsWith('land_use')) return 'land_use';
        if (fe.field.startsWith('project_name')) return 'project_name';
        if (fe.field.startsWith('project_number')) return 'project_number';
        if (fe.field.startsWith('geometry') || fe.field.startsWith('crs')) return geometryField();
      }
      if (GEOMETRY_ERRORS.has(err.code)) return geometryField();
    }
    return 'general';
  }
  const geometryField = () => ({ draw: 'geometry', upload: 'file', paste: 'coordinates' })[inputMode];

  function showError(field, message) {
    if (!showFieldError(form, field, message)) showFieldError(form, 'general', message);
  }

  function explain(err) {
    if (inputMode === 'upload') return explainUploadError(err, landUses);
    if (err instanceof NetworkError) return t('error.network');
    if (err instanceof ApiError) {
      if (err.status >= 500) return t('error.server', { message: err.message });
      return err.message;
    }
    return err.message || String(err);
  }

  // 复核 / 重新核验 of the check shown; a recheck's new check is one click away
  const runner = createReplayRunner({ onChange: drawOutcome, onRechecked: (answer) => onChecked?.(answer.check) });
  function drawOutcome(id) {
    if (!shown || shown.check.id !== id) return;
    const slot = $('.replay-slot', resultBox);
    if (slot) setHtml(slot, outcomeBlock(id, runner.get(id)));
    for (const b of $$('[data-replay], [data-recheck]', resultBox)) b.disabled = runner.get(id)?.status === 'running';
  }
  function draw() {
    const { check, siblings } = shown;
    renderCheck(resultBox, check, config, {
      siblings,
      onSibling: (i) => show(siblings[i], siblings),
      actions: replayButtons(check.id, { canRecheck: can('checks:run') }),
    });
    drawOutcome(check.id);
  }
  async function open(id) {
    const check = await api.get(urls.check(id));
    show(check);
    return check;
  }

  function show(check, siblings = []) {
    shown = { check, siblings };
    draw();
    overlay.show(check);
    if (drawn) drawn.remove();
    drawn = null;
    describeDrawn();
  }

  resultBox.addEventListener('click', (e) => {
    handleReplayClick(e, runner, (id) => open(id).catch((err) => window.alert(err.message)));
  });
  resultBox.addEventListener('change', (e) => {
    const code = e.target.dataset.showOverlap;
    if (code) overlay.toggle(code, e.target.checked);
  });

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearFieldErrors(form);
    const data = new FormData(form);
    const landUse = String(data.get('land_use') || '').trim();
    const common = {
      land_use: landUse || null,
      project_name: String(data.get('project_name') || '').trim() || null,
      project_number: String(data.get('project_number') || '').trim() || null,
    };
    if (landUse && !LAND_USE_CODE.test(landUse)) {
      showError('land_use', t('check.err.landUseFormat'));
      return;
    }
    let call;
    if (inputMode === 'draw') {
      if (!drawn) {
        showError('geometry', t('check.err.noDrawing'));
        return;
      }
      call = () => api.post(urls.checks, { geometry: drawn.toGeoJSON(false).geometry, crs: 'EPSG:4490', ...common });
    } else if (inputMode === 'paste') {
      let parsed;
      try {
        parsed = parseCoordinates(data.get('coordinates'), config.gk.zone);
      } catch (err) {
        if (!(err instanceof CoordinateError)) throw err;
        showError('coordinates', t(err.key, err.params));
        return;
      }
      call = () => api.post(urls.checks, { geometry: parsed.geometry, crs: parsed.crs, ...common });
    } else {
      const file = data.get('file');
      if (!file || !file.name) {
        showError('file', t('check.err.noFile'));
        return;
      }
      const body = new FormData();
      body.append('file', file, file.name);
      for (const [k, v] of Object.entries({ ...common, ...inspector.fieldsForCheck() })) if (v) body.append(k, v);
      call = () => api.postForm(urls.checkUpload, body);
    }
    const button = $('button[type="submit"]', form);
    button.disabled = true;
    button.classList.add('busy');
    setHtml(resultBox, html`<p class="muted">${t('check.running')}</p>`);
    try {
      const answer = await call();
      if (answer && Array.isArray(answer.checks)) {
        if (!answer.checks.length) throw new Error(t('check.err.emptyFile'));
        show(answer.checks[0], answer.checks);
      } else {
        show(answer);
      }
      resultBox.scrollIntoView({ block: 'start' }); // below a file's inspection the result starts off screen
      if (onChecked) onChecked(shown.check);
    } catch (err) {
      setHtml(resultBox, '');
      showError(fieldFor(err), explain(err));
    } finally {
      button.disabled = false;
      button.classList.remove('busy');
    }
  });

  onLangChange(() => {
    describeDrawn();
    describeFile();
    if (shown) draw();
  });
  selectMode('draw');
  describeDrawn();

  return {
    show,
    open,
    clearMap: () => overlay.clear(),
  };
}

