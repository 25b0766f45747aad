/**
 * The alert description template (`ccs_description`). Compiled once per rule: rendering happens for every firing.
 */

export const PLACEHOLDERS = ['readingtype', 'reading', 'threshold', 'ruleoutput', 'deviceid', 'rulename'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];
export type TemplateValues = Readonly<Record<Placeholder, string>>;

/** msdyn_iotalert.msdyn_description is String(100): a longer description could not be stored. */
export const DESCRIPTION_MAX_LENGTH = 100;

/** Literal text and placeholders, alternating. */
export type CompiledTemplate = readonly (string | { readonly name: Placeholder })[];

/** Placeholders are matched without regard to case (`{ReadingType}`); unknown ones stay as written. */
export function compileTemplate(template: string): CompiledTemplate {
  const parts: (string | { name: Placeholder })[] = [];
  const re = /\{([a-zA-Z]+)\}/g;
  let last = 0;
  for (let m = re.exec(template); m !== null; m = re.exec(template)) {
    const name = m[1].toLowerCase();
    if (!(PLACEHOLDERS as readonly string[]).includes(name)) continue;
    if (m.index > last) parts.push(template.slice(last, m.index));
    parts.push({ name: name as Placeholder });
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push(template.slice(last));
  return Object.freeze(parts);
}

export function renderTemplate(template: CompiledTemplate, values: TemplateValues): string {
  let out = '';
  for (const part of template) out += typeof part === 'string' ? part : values[part.name];
  return out.length > DESCRIPTION_MAX_LENGTH ? `${out.slice(0, DESCRIPTION_MAX_LENGTH - 1)}…` : out;
}

/**
 * A reading as people read it: whole numbers as is, others to at most 4 decimals (an average of 72.333333333 is
 * "72.3333"). The firing keeps the exact value; only the description is rounded.
 */
export function formatValue(value: unknown): string {
  if (typeof value === 'number') {
    if (Number.isInteger(value) || Math.abs(value) >= 1e15) return String(value);
    const rounded = Math.round(value * 1e4) / 1e4;
    return String(rounded === 0 && value !== 0 ? value.toPrecision(4) : rounded);
  }
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  return String(value);
}
