/**
 * Browser tests: Debian's Chromium driven by playwright-core (never a downloaded browser). Chromium is found at
 * CCS_TEST_CHROMIUM or /usr/bin/chromium; without it the tests are skipped with the reason. The console is built
 * with Vite first when its build is missing or older than its sources, so `npm test` works on a fresh clone.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const WEB_SOURCES = join(ROOT, 'src/console/web');
export const WEB_BUILD = join(ROOT, 'dist/console/web');
export const RESULTS = join(ROOT, 'test-results/console');

/** The Chromium executable, or undefined. */
export function chromiumPath(): string | undefined {
  const configured = process.env['CCS_TEST_CHROMIUM'];
  if (configured) return configured;
  return existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : undefined;
}

/** Why browser tests cannot run here, or undefined when they can: the `skip` option of node:test. */
export function browserSkipReason(): string | undefined {
  const path = chromiumPath();
  if (!path) return 'no Chromium: set CCS_TEST_CHROMIUM to its path or install it (apt-get install chromium); .ci/run does both';
  if (!existsSync(path)) return `CCS_TEST_CHROMIUM is ${path}, which does not exist`;
  return undefined;
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the console unless dist/console/web is newer than every source file (and vite.config.ts). */
export function ensureConsoleBuilt(): void {
  const index = join(WEB_BUILD, 'index.html');
  const sources = Math.max(newestMtime(WEB_SOURCES), statSync(join(ROOT, 'vite.config.ts')).mtimeMs);
  if (existsSync(index) && statSync(index).mtimeMs >= sources) return;
  execFileSync(process.execPath, [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], { cwd: ROOT, stdio: 'inherit' });
}

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath(),
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

/** A context at a given viewport, with timeouts generous enough for a loaded machine. */
export async function newContext(browser: Browser, viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport, reducedMotion: 'reduce' });
  context.setDefaultTimeout(30_000);
  return context;
}

/** Saves a full-page screenshot under test-results/console/<name>.png; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(RESULTS, { recursive: true });
  const path = join(RESULTS, `${name}.png`);
  mkdirSync(dirname(path), { recursive: true });
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Signs in through the sign-in form and waits for the dashboard. */
export async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('button', { name: 'Sign out' }).waitFor();
}

/**
 * Accessibility problems on the page as it is: form controls without an accessible name, and visible text whose
 * contrast with its background is below WCAG AA (4.5:1; 3:1 for large text). Disabled controls are exempt, as
 * WCAG allows. Returns one line per problem.
 */
export async function accessibilityProblems(page: Page): Promise<string[]> {
  // A string, not a function: the TypeScript loader would add helpers to a function that do not exist in the page.
  return page.evaluate(A11Y_SCRIPT) as Promise<string[]>;
}

const A11Y_SCRIPT = `(() => {
  const problems = [];
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + (typeof el.className === 'string' && el.className ? '.' + el.className.split(' ')[0] : '');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const named = (el.labels && el.labels.length > 0) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!named) problems.push('unlabelled ' + describe(el));
  }
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = (c) => {
    const f = (v) => { const s = v / 255; return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c[3] === undefined || c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const seen = new Set();
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || !node.textContent.trim() || el.closest('.sr-only, [disabled], .u-legend')) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || style.display === 'none' || box.width === 0 || box.height === 0) continue;
    const l1 = lum(rgb(style.color));
    const l2 = lum(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) {
      const key = describe(el) + ratio.toFixed(2);
      if (!seen.has(key)) problems.push('contrast ' + ratio.toFixed(2) + ':1 for "' + node.textContent.trim().slice(0, 30) + '" in ' + describe(el));
      seen.add(key);
    }
  }
  return problems;
})()`;

/** Waits until nothing on the page says it is loading (the event stream keeps the network busy for good). */
export async function settled(page: Page): Promise<void> {
  await page.locator('.loading').first().waitFor({ state: 'detached' });
}
