// The libraries loaded as classic scripts from web/node_modules (see index.html), in one place.
export const L = window.L;
export const proj4 = window.proj4;
export const geodesic = window.geodesic;
if (!L || !L.PM) throw new Error('Leaflet and leaflet-geoman must be loaded before the app modules');
