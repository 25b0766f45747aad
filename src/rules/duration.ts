/**
 * ISO 8601 durations as rules write them (`PT5M`, `PT1H30M`, `P1D`, `PT0.5S`). Years and months are refused: their
 * length depends on the calendar, and a rule's window must be a fixed number of milliseconds so that evaluation
 * does not depend on the date.
 */

const DURATION = /^P(?:(\d+(?:[.,]\d+)?)W)?(?:(\d+(?:[.,]\d+)?)D)?(?:T(?:(\d+(?:[.,]\d+)?)H)?(?:(\d+(?:[.,]\d+)?)M)?(?:(\d+(?:[.,]\d+)?)S)?)?$/;
const UNIT_MS = [7 * 86_400_000, 86_400_000, 3_600_000, 60_000, 1000];

export const SECOND = 1000;
export const MINUTE = 60 * SECOND;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

/**
 * Milliseconds in `text`, or a reason it is not a duration we accept. Lower case is accepted (`pt5m`): people type
 * it, and it cannot mean anything else.
 */
export function parseIsoDuration(text: string): number | { readonly error: string } {
  const upper = text.trim().toUpperCase();
  if (/^P(?:\d+(?:[.,]\d+)?Y)|^P(?:[^T]*\d(?:[.,]\d+)?M)/.test(upper)) {
    return { error: 'must not use years or months (their length varies); use days, hours, minutes or seconds' };
  }
  const m = DURATION.exec(upper);
  if (m === null || upper === 'P' || upper.endsWith('T')) return { error: 'must be an ISO 8601 duration such as "PT5M", "PT1H30M" or "P1D"' };
  let ms = 0;
  for (let i = 0; i < UNIT_MS.length; i++) {
    const part = m[i + 1];
    if (part !== undefined) ms += Number(part.replace(',', '.')) * UNIT_MS[i];
  }
  return Math.round(ms);
}

/** `PT5M` for 300000: the shortest ISO form, for messages and for writing a condition back as JSON. */
export function formatIsoDuration(ms: number): string {
  if (ms > 0 && ms % DAY === 0) return `P${ms / DAY}D`;
  let rest = ms;
  let out = 'P';
  const days = Math.floor(rest / DAY);
  if (days > 0) {
    out += `${days}D`;
    rest -= days * DAY;
  }
  out += 'T';
  const hours = Math.floor(rest / HOUR);
  rest -= hours * HOUR;
  const minutes = Math.floor(rest / MINUTE);
  rest -= minutes * MINUTE;
  if (hours > 0) out += `${hours}H`;
  if (minutes > 0) out += `${minutes}M`;
  if (rest > 0 || (hours === 0 && minutes === 0)) out += `${rest / SECOND}S`;
  return out;
}
