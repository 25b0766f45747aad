import type { JSX } from 'preact';

export function CategoriesPage(_props: Record<string, never>): JSX.Element {
  return <div class="page"><h1>CategoriesPage</h1></div>;
}
