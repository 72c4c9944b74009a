// The single entry point: load the map configuration and the catalogue, then build each part.
import { api, urls } from './api.js';
import { createCheckPanel } from './check.js';
import { createConflicts } from './conflicts.js';
import { normaliseConfig } from './config.js';
import { createDashboard } from './dashboard.js';
import { $, $$ } from './dom.js';
import { downloadMapPng } from './export.js';
import { createHistory } from './history.js';
import { createIdentify } from './identify.js';
import { apply, lang, onLangChange, pick, setLang, t } from './i18n.js';
import { createLayerTree } from './layertree.js';
import { createMap, trackCoordinates } from './map.js';
import { createMeasureTool } from './measure.js';
import { createSearch } from './search.js';

function selectTab(name) {
  for (const b of $$('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
  for (const p of $$('[data-panel]')) p.hidden = p.dataset.panel !== name;
}

function selectView(name, map, dashboard) {
  for (const b of $$('[data-view]')) b.setAttribute('aria-selected', String(b.dataset.view === name));
  $('#view-map').hidden = name !== 'map';
  $('#view-dashboard').hidden = name !== 'dashboard';
  if (name === 'map') map.invalidateSize();
  else dashboard.shown();
}

function langButtons() {
  for (const b of $$('[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang()));
}

async function start() {
  apply();
  langButtons();
  for (const b of $$('[data-lang]')) b.addEventListener('click', () => setLang(b.dataset.lang));
  onLangChange(langButtons);

  const [rawConfig, catalogue] = await Promise.all([api.get(urls.mapConfig), api.get(urls.layers)]);
  const config = normaliseConfig(rawConfig, catalogue);
  const countyName = () => {
    $('#county-name').textContent = pick(config.county);
  };
  countyName();
  onLangChange(countyName);

  const { map, renderer } = createMap($('#map'), config);
  trackCoordinates(map, config, $('#coords'));
  const tree = createLayerTree(map, config, $('#layer-tree'));
  createIdentify(map, tree, config, $('#identify-panel'));
  const checkPanel = createCheckPanel(map, config, renderer, $('#check-panel'), {
    onChecked: () => history.reload(),
  });
  const openCheck = (id) => {
    selectTab('check');
    checkPanel.open(id).catch((err) => window.alert(err.message));
  };
  const history = createHistory($('#history-panel'), { onOpen: openCheck });
  const conflicts = createConflicts(map, config, renderer, $('#conflicts-panel'));
  createSearch(map, tree, config, $('#search'), { onCheck: openCheck });
  createMeasureTool(map, renderer, $('#tools'));
  const dashboard = createDashboard($('#dashboard'));

  $('[data-action="export"]').addEventListener('click', async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    try {
      await downloadMapPng(map, [t('app.title'), pick(config.county)].filter(Boolean).join(' · '));
    } catch (err) {
      window.alert(t('export.failed', { message: err.message }));
    } finally {
      button.disabled = false;
    }
  });
  for (const b of $$('[data-tab]')) {
    b.addEventListener('click', () => {
      selectTab(b.dataset.tab);
      if (b.dataset.tab === 'history') history.reload();
      if (b.dataset.tab === 'conflicts') conflicts.loadRemembered();
    });
  }
  for (const b of $$('[data-view]')) b.addEventListener('click', () => selectView(b.dataset.view, map, dashboard));
  if (window.location.hash === '#dashboard') selectView('dashboard', map, dashboard);

  $('#map').dataset.ready = 'true';
  window.gisApp = { map, config, tree, checkPanel, dashboard };
}

start().catch((err) => {
  const box = $('#fatal');
  box.textContent = t('error.startup', { message: err.message });
  box.hidden = false;
  throw err;
});
