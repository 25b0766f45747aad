import type { JSX } from 'preact';

export function DevicesPage(_props: { params: URLSearchParams }): JSX.Element {
  return <div class="page"><h1>DevicesPage</h1></div>;
}
