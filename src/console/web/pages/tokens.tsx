import type { JSX } from 'preact';

export function TokensPage(_props: Record<string, never>): JSX.Element {
  return <div class="page"><h1>TokensPage</h1></div>;
}
