// The Leaflet map: county extent at first view, offline basemap, scale bar, cursor coordinates.
import { gkProjection } from './geodesy.js';
import { t, onLangChange } from './i18n.js';
import { L } from './vendor.js';

export function createMap(element, config) {
  const map = L.map(element, {
    zoomControl: true,
    attributionControl: true,
    preferCanvas: true,
    zoomSnap: 0.25,
    maxZoom: 20,
    minZoom: 5,
  });
  map.attributionControl.setPrefix('Leaflet');
  map.createPane('features').style.zIndex = 300;
  map.createPane('highlight').style.zIndex = 450;
  const [minx, miny, maxx, maxy] = config.county.bbox;
  map.fitBounds([[miny, minx], [maxy, maxx]], { padding: [8, 8], animate: false });
  map.setMaxBounds(L.latLngBounds([[miny - 2, minx - 3], [maxy + 2, maxx + 3]]));

  // offline basemap: the plain background is the map container's colour (css); hillshade if configured
  if (config.hillshade) {
    L.tileLayer(config.hillshade.url, {
      maxNativeZoom: config.hillshade.maxzoom || 16,
      opacity: config.hillshade.opacity ?? 0.45,
      attribution: config.hillshade.attribution || '',
      className: 'hillshade',
    }).addTo(map);
  }
  let online = null;
  if (config.basemap) {
    online = L.tileLayer(config.basemap.url, { attribution: config.basemap.attribution });
    online.addTo(map);
  }
  L.control.scale({ imperial: false, maxWidth: 160 }).addTo(map);
  const renderer = L.canvas({ padding: 0.5, pane: 'highlight' });
  return { map, renderer, online };
}

/** Cursor position in CGCS2000 lon/lat and in the county's Gauss-Krüger zone. */
export function trackCoordinates(map, config, element) {
  const gk = gkProjection(config.gk.zone);
  let last = null;
  const render = () => {
    if (!last) {
      element.textContent = t('coords.hint');
      return;
    }
    const { lat, lng } = last;
    const p = gk.forward(lng, lat);
    element.innerHTML = '';
    const a = document.createElement('span');
    a.className = 'coord-ll';
    a.textContent = `CGCS2000 ${t('coords.lon')} ${lng.toFixed(6)}° ${t('coords.lat')} ${lat.toFixed(6)}°`;
    const b = document.createElement('span');
    b.className = 'coord-gk';
    b.textContent = `${t('coords.gk', { zone: config.gk.zone, epsg: config.gk.epsg })} X ${p.x.toFixed(2)} Y ${p.y.toFixed(2)}`;
    element.append(a, b);
  };
  map.on('mousemove', (e) => {
    last = e.latlng;
    render();
  });
  onLangChange(render);
  render();
  return gk;
}
