// Times in the node's configured zone, whatever zone the browser is in: inputs are read
// as wall-clock times there, and shown back the same way.

let zone = 'UTC';
export function setZone(name) { zone = name; }
export function zoneName() { return zone; }

function parts(ms) {
  const format = new Intl.DateTimeFormat('en-CA', {
    timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
  const out = {};
  for (const part of format.formatToParts(new Date(ms))) out[part.type] = part.value;
  return out;
}

/** `2026-12-03T14:05:00` in the zone (the value of a datetime-local input). */
export function toInput(ms) {
  const p = parts(ms);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
}

/** `2026-12-03 14:05:00` in the zone. */
export function format(ms) {
  return toInput(ms).replace('T', ' ');
}

/** The instant (unix ms) a datetime-local value names in the zone; NaN if empty. */
export function fromInput(value) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(value || '');
  if (!match) return NaN;
  const [, y, mo, d, h, mi, s] = match.map((v) => (v === undefined ? 0 : Number(v)));
  const wall = Date.UTC(y, mo - 1, d, h, mi, s || 0);
  // The zone's offset at the guess, twice (a guess across a DST change moves once).
  let guess = wall;
  for (let i = 0; i < 2; i += 1) {
    const p = parts(guess);
    const shown = Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute, +p.second);
    guess = wall - (shown - guess);
  }
  return guess;
}
