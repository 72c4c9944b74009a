// The single entry point: find out who is using the map (login screen if nobody, unless the platform
// allows anonymous read), load the map configuration and the catalogue, then build each part and show
// only what the role may do. A later 401 (session ended) brings the login screen back over the map.
import { createAdmin } from './admin.js';
import { api, ApiError, onAccessProblem, urls } from './api.js';
import {
  anonymousPrincipal,
  applyPermissions,
  can,
  createAccountBox,
  createLoginScreen,
  currentPrincipal,
  logout,
  onPrincipalChange,
  setPrincipal,
  whoAmI,
} from './auth.js';
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
import { createChangesView } from './changes.js';
import { createMap, trackCoordinates } from './map.js';
import { createMeasureTool } from './measure.js';
import { createSearch } from './search.js';
import { FeatureTileLayer } from './tiles.js';

function selectTab(name) {
  for (const b of $$('[data-tab]')) b.setAttribute('aria-selected', String(b.dataset.tab === name));
  for (const p of $$('[data-panel]')) p.hidden = p.dataset.panel !== name;
}

/** Show one view (map, dashboard, admin): views = {map, dashboard, admin}, each but the map with shown(). */
function selectView(name, views) {
  for (const b of $$('[data-view]')) b.setAttribute('aria-selected', String(b.dataset.view === name));
  for (const key of Object.keys(views)) $(`#view-${key}`).hidden = key !== name;
  if (views.admin && name !== 'admin') views.admin.hidden();
  if (name === 'map') views.map.invalidateSize();
  else views[name].shown();
}

function langButtons() {
  for (const b of $$('[data-lang]')) b.setAttribute('aria-pressed', String(b.dataset.lang === lang()));
}

/** A short message at the bottom of the page (403, 429, a failed logout), gone after a while or on click. */
function createNotice(box) {
  let timer = null;
  box.addEventListener('click', () => {
    box.hidden = true;
  });
  return {
    show(message, kind = 'error') {
      box.textContent = message;
      box.className = `toast ${kind}`;
      box.hidden = false;
      clearTimeout(timer);
      timer = setTimeout(() => {
        box.hidden = true;
      }, 8000);
    },
  };
}

/** Build the map and its tools once the page may read the map. Returns what later steps need. */
function build(rawConfig, catalogue) {
  const config = normaliseConfig(rawConfig, catalogue);
  const countyName = () => {
    $('#county-name').textContent = pick(config.county);
  };
  countyName();
  onLangChange(countyName);

  const { map, renderer } = createMap($('#map'), config);
  trackCoordinates(map, config, $('#coords'));
  const tree = createLayerTree(map, config, $('#layer-tree'), { changes: createChangesView(map, renderer) });
  createIdentify(map, tree, config, $('#identify-panel'));
  const checkPanel = createCheckPanel(map, config, renderer, $('#check-panel'), {
    onChecked: () => history.reload(),
  });
  const openCheck = (id) => {
    if (!can('checks:read')) return;
    selectTab('check');
    checkPanel.open(id).catch((err) => window.alert(err.message));
  };
  const history = createHistory($('#history-panel'), { onOpen: openCheck });
  const conflicts = createConflicts(map, config, renderer, $('#conflicts-panel'));
  createSearch(map, tree, config, $('#search'), { onCheck: openCheck });
  createMeasureTool(map, renderer, $('#tools'));
  const dashboard = createDashboard($('#dashboard'));
  const admin = createAdmin($('#admin'));
  const views = { map, dashboard, admin };

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
  for (const b of $$('[data-view]')) b.addEventListener('click', () => selectView(b.dataset.view, views));

  /** Only what the role may do: hidden tabs and views are left for the map and its layers. */
  function enforcePermissions() {
    applyPermissions();
    const tab = $('[data-tab][aria-selected="true"]');
    if (tab && tab.hidden) selectTab('layers');
    const view = $('[data-view][aria-selected="true"]');
    if (view && view.hidden) selectView('map', views);
  }
  onPrincipalChange(enforcePermissions);
  enforcePermissions();
  // #dashboard or #admin opens that view, when the role may see it
  const wanted = $(`[data-view="${CSS.escape(window.location.hash.slice(1))}"]`);
  if (wanted && !wanted.hidden && wanted.dataset.view !== 'map') selectView(wanted.dataset.view, views);

  /** After a new login over the map: draw again the tiles that failed while the session was gone, and the
   * administration view's list if it is open. */
  function refresh() {
    map.eachLayer((layer) => {
      if (layer instanceof FeatureTileLayer && layer.getContainer()?.querySelector('canvas[data-error]')) layer.redraw();
    });
    if (!$('#view-admin').hidden) admin.shown();
  }

  $('#map').dataset.ready = 'true';
  window.gisApp = { map, config, tree, checkPanel, dashboard, admin };
  return { refresh };
}

async function start() {
  apply();
  langButtons();
  for (const b of $$('[data-lang]')) b.addEventListener('click', () => setLang(b.dataset.lang));
  onLangChange(langButtons);

  const loginScreen = createLoginScreen($('#login'));
  const notice = createNotice($('#notice'));
  let app = null;

  async function afterLogin(next) {
    if (!next) return; // cancelled: the anonymous read-only map stays
    const previous = currentPrincipal();
    if (previous && previous.kind === 'user' && previous.name !== next.name) {
      window.location.reload(); // another person: start from a clean page
      return;
    }
    setPrincipal(next);
    if (app) app.refresh();
  }

  function sessionEnded() {
    if (!app || loginScreen.shown) return; // before the map is built, start() asks for the login itself
    const previous = currentPrincipal();
    const reason = previous && previous.kind === 'user' ? 'auth.expired' : 'auth.required';
    loginScreen.show({ reason }).then(afterLogin);
  }

  onAccessProblem((err) => {
    if (err.status === 401) sessionEnded();
    else notice.show(err.message);
  });

  createAccountBox($('#account'), {
    onLogin: () => loginScreen.show({ reason: null, cancellable: true }).then(afterLogin),
    onLogout: async () => {
      try {
        await logout();
      } catch (err) {
        notice.show(err.message);
        return;
      }
      window.location.reload();
    },
  });

  // who is this, and may the map be read (anonymous read answers map-config without a login)?
  const [me, rawConfig, catalogue] = await Promise.allSettled([whoAmI(), api.get(urls.mapConfig), api.get(urls.layers)]);
  if (me.status === 'rejected') throw me.reason;
  if (me.value) {
    setPrincipal(me.value);
  } else if (rawConfig.status === 'fulfilled' && catalogue.status === 'fulfilled') {
    setPrincipal(anonymousPrincipal());
  } else {
    const refused = [rawConfig, catalogue].find((r) => r.status === 'rejected').reason;
    if (!(refused instanceof ApiError && refused.status === 401)) throw refused;
    applyPermissions();
    setPrincipal(await loginScreen.show());
    const [config, layers] = await Promise.all([api.get(urls.mapConfig), api.get(urls.layers)]);
    app = build(config, layers);
    return;
  }
  for (const r of [rawConfig, catalogue]) if (r.status === 'rejected') throw r.reason;
  app = build(rawConfig.value, catalogue.value);
}

start().catch((err) => {
  const box = $('#fatal');
  box.textContent = t('error.startup', { message: err.message });
  box.hidden = false;
  throw err;
});
