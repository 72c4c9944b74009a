// Export the current map view as PNG: the canvases and same-origin images of the map panes are
// composited in paint order (vector tiles are canvases, so they export as drawn), plus labels and
// the scale bar. Tiles of an online basemap from another host cannot be read back and are left out.
import { t } from './i18n.js';

function zIndexOf(el) {
  const z = parseInt(getComputedStyle(el).zIndex, 10);
  return Number.isFinite(z) ? z : 0;
}

function opacityOf(el, stop) {
  let o = 1;
  for (let e = el; e && e !== stop; e = e.parentElement) o *= Number(getComputedStyle(e).opacity || 1);
  return o;
}

function sameOrigin(src) {
  try {
    return new URL(src, window.location.href).origin === window.location.origin || src.startsWith('data:');
  } catch {
    return false;
  }
}

function svgImage(svg) {
  return new Promise((resolve) => {
    const clone = svg.cloneNode(true);
    clone.setAttribute('xmlns', 'http://www.w3.org/2000/svg');
    const rect = svg.getBoundingClientRect();
    clone.setAttribute('width', rect.width);
    clone.setAttribute('height', rect.height);
    const url = URL.createObjectURL(new Blob([new XMLSerializer().serializeToString(clone)], { type: 'image/svg+xml' }));
    const img = new Image();
    img.onload = () => resolve({ img, url });
    img.onerror = () => resolve(null);
    img.src = url;
  });
}

async function paint(ctx, el, origin, root, skipped) {
  const children = [...el.children].filter((c) => getComputedStyle(c).display !== 'none' && getComputedStyle(c).visibility !== 'hidden');
  children.sort((a, b) => zIndexOf(a) - zIndexOf(b));
  for (const child of children) {
    const r = child.getBoundingClientRect();
    if (child instanceof HTMLCanvasElement) {
      if (r.width && r.height) {
        ctx.globalAlpha = opacityOf(child, root);
        ctx.drawImage(child, r.left - origin.left, r.top - origin.top, r.width, r.height);
      }
    } else if (child instanceof HTMLImageElement) {
      if (!child.complete || !child.naturalWidth) continue;
      if (!sameOrigin(child.src)) {
        skipped.add('basemap');
        continue;
      }
      ctx.globalAlpha = opacityOf(child, root);
      ctx.drawImage(child, r.left - origin.left, r.top - origin.top, r.width, r.height);
    } else if (child instanceof SVGSVGElement) {
      const loaded = await svgImage(child);
      if (loaded) {
        ctx.globalAlpha = opacityOf(child, root);
        ctx.drawImage(loaded.img, r.left - origin.left, r.top - origin.top, r.width, r.height);
        URL.revokeObjectURL(loaded.url);
      }
    } else if (child.classList.contains('map-label')) {
      ctx.globalAlpha = 1;
      ctx.font = getComputedStyle(child).font;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.lineWidth = 3;
      ctx.strokeStyle = 'rgba(255,255,255,0.9)';
      ctx.fillStyle = getComputedStyle(child).color;
      const x = r.left + r.width / 2 - origin.left;
      const y = r.top + r.height / 2 - origin.top;
      ctx.strokeText(child.textContent, x, y);
      ctx.fillText(child.textContent, x, y);
    } else {
      await paint(ctx, child, origin, root, skipped);
    }
  }
  ctx.globalAlpha = 1;
}

function drawScale(ctx, container, origin) {
  const line = container.querySelector('.leaflet-control-scale-line');
  if (!line) return;
  const r = line.getBoundingClientRect();
  const x = r.left - origin.left;
  const y = r.top - origin.top;
  ctx.fillStyle = 'rgba(255,255,255,0.8)';
  ctx.fillRect(x, y, r.width, r.height);
  ctx.strokeStyle = '#333';
  ctx.lineWidth = 2;
  ctx.beginPath();
  ctx.moveTo(x, y);
  ctx.lineTo(x, y + r.height);
  ctx.lineTo(x + r.width, y + r.height);
  ctx.lineTo(x + r.width, y);
  ctx.stroke();
  ctx.fillStyle = '#333';
  ctx.font = '11px sans-serif';
  ctx.textAlign = 'left';
  ctx.textBaseline = 'middle';
  ctx.fillText(line.textContent, x + 4, y + r.height / 2);
}

/** A PNG Blob of the map as it is on screen, with a title line and the export time. */
export async function exportMapPng(map, title) {
  const container = map.getContainer();
  const origin = container.getBoundingClientRect();
  const ratio = window.devicePixelRatio || 1;
  const footer = 26;
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(origin.width * ratio);
  canvas.height = Math.round((origin.height + footer) * ratio);
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.fillStyle = getComputedStyle(container).backgroundColor || '#F4F1EA';
  ctx.fillRect(0, 0, origin.width, origin.height);
  const skipped = new Set();
  await paint(ctx, map.getPane('mapPane'), origin, container, skipped);
  drawScale(ctx, container, origin);
  ctx.fillStyle = '#FFFFFF';
  ctx.fillRect(0, origin.height, origin.width, footer);
  ctx.fillStyle = '#222';
  ctx.font = '12px "Noto Sans CJK SC", "Noto Sans SC", sans-serif';
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'left';
  const when = new Date().toLocaleString();
  const note = skipped.has('basemap') ? ` · ${t('export.noOnlineBasemap')}` : '';
  ctx.fillText(`${title} · ${when}${note}`, 8, origin.height + footer / 2);
  return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('toBlob failed'))), 'image/png'));
}

export async function downloadMapPng(map, title) {
  const blob = await exportMapPng(map, title);
  const stamp = new Date().toISOString().slice(0, 16).replace(/[-:T]/g, '');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `map-${stamp}.png`;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
  return blob;
}
