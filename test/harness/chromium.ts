/**
 * Debian's Chromium, headless, for tests of pages trackshift writes: installed by
 * scripts/chromium.sh when missing, started with a fresh profile and with its background
 * networking off (this machine has no network beyond loopback).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
let binary: Promise<string> | undefined;

export function chromiumPath(): Promise<string> {
  binary ??= execFileAsync('bash', [join(ROOT, 'scripts/chromium.sh')], { maxBuffer: 10_000_000 }).then((r) => r.stdout.trim());
  return binary;
}

const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars'];

/** Opens a local file: its DOM after the page has run (`--dump-dom`), and a PNG screenshot of it. */
export async function openPage(file: string, screenshot: string, size = '1200,2400'): Promise<string> {
  const chromium = await chromiumPath();
  const profile = mkdtempSync(join(tmpdir(), 'trackshift-chromium-'));
  const url = pathToFileURL(file).href;
  try {
    await execFileAsync(chromium, [...FLAGS, `--user-data-dir=${profile}`, `--window-size=${size}`, `--screenshot=${screenshot}`, url], { timeout: 120_000 });
    const { stdout } = await execFileAsync(chromium, [...FLAGS, `--user-data-dir=${profile}`, '--dump-dom', url], { timeout: 120_000, maxBuffer: 100_000_000 });
    return stdout;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}
