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

/** Waits until nothing on the page says it is loading (the event stream keeps the network busy for good). */
export async function settled(page: Page): Promise<void> {
  await page.locator('.loading').first().waitFor({ state: 'detached' });
}
