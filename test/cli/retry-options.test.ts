/** The retry flags and verify's exit codes, as a user meets them in --help and in mistakes. */
import { describe, expect, it } from 'vitest';
import { cli } from './run-cli.js';

describe('--retries, --retry-window and the incomplete exit code', () => {
  it('are offered by every verb that talks to a server', async () => {
    for (const verb of ['copy', 'export', 'import', 'verify', 'ls', 'copy-model-version']) {
      const help = await cli([verb, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout, verb).toMatch(/--retries <n>/);
      expect(help.stdout, verb).toMatch(/--retry-window <seconds>/);
    }
  });

  it('verify --help documents exit code 3 (incomplete) beside 0, 1 and 2', async () => {
    const help = await cli(['verify', '--help']);
    expect(help.stdout).toMatch(/Exit codes:\n\s+0\s+equal[\s\S]*1\s+different[\s\S]*2\s+usage[\s\S]*3\s+incomplete/);
  });

  it('refuses values that are not whole numbers, as a usage error', async () => {
    const bad = await cli(['verify', 'memory:a', 'memory:b', '--retry-window', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--retry-window takes a whole number/);
  });
});
