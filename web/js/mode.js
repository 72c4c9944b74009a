// Which tool owns map clicks: identify (default), drawing a parcel, or measuring.
const listeners = new Set();
let current = 'identify';

export function mode() {
  return current;
}

export function setMode(next) {
  if (next === current) return;
  const previous = current;
  current = next;
  for (const fn of listeners) fn(next, previous);
}

export function onModeChange(fn) {
  listeners.add(fn);
}
