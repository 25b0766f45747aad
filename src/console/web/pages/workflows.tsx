import type { JSX } from 'preact';

export function WorkflowsPage(_props: Record<string, never>): JSX.Element {
  return <div class="page"><h1>WorkflowsPage</h1></div>;
}
