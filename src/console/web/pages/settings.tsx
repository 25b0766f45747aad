import type { JSX } from 'preact';

export function SettingsPage(_props: Record<string, never>): JSX.Element {
  return <div class="page"><h1>SettingsPage</h1></div>;
}
