import type { JSX } from 'preact';

export function CasesPage(_props: { params: URLSearchParams }): JSX.Element {
  return <div class="page"><h1>Cases</h1></div>;
}
export function CasePage(_props: { id: string }): JSX.Element {
  return <div class="page"><h1>Case</h1></div>;
}
