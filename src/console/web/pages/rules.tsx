import type { JSX } from 'preact';

export function RulesPage(): JSX.Element {
  return <div class="page"><h1>Rules</h1></div>;
}
export function RulePage(_props: { id: string }): JSX.Element {
  return <div class="page"><h1>Rule</h1></div>;
}
