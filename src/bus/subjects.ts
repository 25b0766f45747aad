/**
 * Encodes an outside value (a device id) as one subject token: NATS subjects cannot hold `.`, `*`, `>` or white
 * space in a token, and IoT Hub device ids may contain `.` and `*` (device-identity doc: `- . % _ * ? ! ( ) , : = @ $ '`).
 * Percent-encoding keeps the mapping reversible and leaves ordinary ids unchanged.
 */
export function subjectToken(value: string): string {
  return /^[A-Za-z0-9_\-:=@$'!(),?]+$/.test(value) ? value : value.replace(/[^A-Za-z0-9_\-:=@$'!(),?]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

export function fromSubjectToken(token: string): string {
  return decodeURIComponent(token);
}

/** Whether `subject` matches `pattern` (NATS wildcards: `*` one token, trailing `>` one or more). */
export function subjectMatches(pattern: string, subject: string): boolean {
  if (pattern === subject) return true;
  const p = pattern.split('.');
  const s = subject.split('.');
  for (let i = 0; i < p.length; i++) {
    const t = p[i];
    if (t === '>') return i === p.length - 1 && s.length > i;
    if (i >= s.length) return false;
    if (t !== '*' && t !== s[i]) return false;
  }
  return p.length === s.length;
}

/** Subject of a device's durable telemetry records (payload: the hub's `TelemetryRecord`). */
export function telemetrySubject(deviceId: string): string {
  return `telemetry.${subjectToken(deviceId)}`;
}
