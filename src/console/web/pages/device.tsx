import type { JSX } from 'preact';

export function DevicePage(_props: { id: string }): JSX.Element {
  return <div class="page"><h1>DevicePage</h1></div>;
}
