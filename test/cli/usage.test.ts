/** The command line without any server: help, usage errors, the bundled sample. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { CLI, cli } from './run-cli.js';

const SAMPLE = fileURLToPath(new URL('../../sample/mlruns', import.meta.url));

const temp = () => mkdtempSync(join(tmpdir(), 'trackshift-cli-'));

describe('command line', () => {
  it('explains every verb', async () => {
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const verb of ['copy', 'export', 'import', 'copy-model-version', 'verify', 'ls']) {
      expect(top.stdout).toContain(verb);
      const help = await cli([verb, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/Examples:/);
    }
  });

  it('exits 2 with one clear line on bad usage', async () => {
    const missing = await cli(['copy', 'only-one-arg']);
    expect(missing.code).toBe(2);
    const unknown = await cli(['copy', './no/such/place', join(temp(), 'x')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/source "\.\/no\/such\/place" does not exist/);
    expect(unknown.stderr).not.toMatch(/\n\s+at /); // no stack trace
    const format = await cli(['ls', 'nosuchformat:/tmp']);
    expect(format.code).toBe(2);
    expect(format.stderr).toMatch(/unknown format "nosuchformat:"/);
    const workers = await cli(['copy', 'a', 'b', '--workers', 'zero']);
    expect(workers.code).toBe(2);
    expect(workers.stderr).toMatch(/--workers takes a whole number/);
  });

  it('ends quietly when its reader closes the pipe early (`… | head -1`)', async () => {
    const shell = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" ls --runs "${SAMPLE}" | head -1`], { encoding: 'utf8' });
    expect(shell.stdout.split('\n').filter(Boolean)).toHaveLength(1);
    expect(shell.stderr).not.toMatch(/EPIPE|\n\s+at /);
  });

  it('exits 2 on model selection mistakes, before anything is written', async () => {
    const out = join(temp(), 'never');
    const both = await cli(['export', 'sample/mlruns', out, '--model', 'm', '--versions', '1', '--stages', 'Production']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/--versions and --stages exclude each other/);
    const stage = await cli(['export', 'sample/mlruns', out, '--stages', 'Prod']);
    expect(stage.code).toBe(2);
    expect(stage.stderr).toMatch(/"Prod" is not a stage; use None, Staging, Production, Archived/);
    const missing = await cli(['export', 'sample/mlruns', out, '--model', 'no-such-model']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/registered model "no-such-model" is not in/);
    const scope = await cli(['export', 'sample/mlruns', out, '--models-only', '--runs-only']);
    expect(scope.code).toBe(2);
    const version = await cli(['copy-model-version', '--src-model', 'm', '--src-version', 'latest', '--dst-model', 'n', 'sample/mlruns', out]);
    expect(version.code).toBe(2);
    expect(version.stderr).toMatch(/--src-version takes a version number/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses to export into a folder that holds something else', async () => {
    const dir = temp();
    mkdirSync(join(dir, 'busy'));
    writeFileSync(join(dir, 'busy', 'notes.txt'), 'mine');
    const result = await cli(['export', 'sample/mlruns', join(dir, 'busy')]);
    expect(result.code).toBe(2);
    expect(existsSync(join(dir, 'busy', 'notes.txt'))).toBe(true);
  });

  it('imports only what an export writes: an mlruns folder is refused, with copy named instead', async () => {
    const dst = join(temp(), 'restored');
    const result = await cli(['import', SAMPLE, `mlruns:${dst}`]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/import reads a folder of files .* is mlruns; use copy to read it/);
  });

  it('exports the bundled sample, then finds everything already there', async () => {
    const out = join(temp(), 'bundle');
    const state = temp();
    const first = await cli(['export', 'sample/mlruns', out, '--state-dir', state]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/copied [1-9]\d*, skipped 0 \(already there\), failed 0/);
    const second = await cli(['export', 'sample/mlruns', out, '--state-dir', state, '--json']);
    expect(second.code).toBe(0);
    const report = JSON.parse(second.stdout);
    expect(report.copied.runs).toBe(0);
    expect(report.skipped.runs).toBeGreaterThan(0);
    const listing = await cli(['ls', out, '--json']);
    expect(listing.code).toBe(0);
    expect(JSON.parse(listing.stdout).experiments.length).toBeGreaterThan(0);
  });

  it('verifies the sample against its export, and names a param changed in the bundle', async () => {
    const out = join(temp(), 'bundle');
    expect((await cli(['export', 'sample/mlruns', out, '--state-dir', temp()])).code).toBe(0);
    const same = await cli(['verify', 'sample/mlruns', out]);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stdout).toMatch(/EQUAL: no differences/);
    const runs = join(out, 'experiments');
    const runJson = readdirSync(runs, { recursive: true, encoding: 'utf8' }).map((f) => join(runs, f)).find((f) => f.endsWith('run.json') && readFileSync(f, 'utf8').includes('"lr": "0.1"'))!;
    writeFileSync(runJson, readFileSync(runJson, 'utf8').replace('"lr": "0.1"', '"lr": "0.2"'));
    const changed = await cli(['verify', 'sample/mlruns', out, '--json']);
    expect(changed.code).toBe(1);
    const report = JSON.parse(changed.stdout);
    expect(report.objects.flatMap((o: { differences: unknown[] }) => o.differences)).toEqual([{ path: expect.stringMatching(/^mnist-classifier\/\w+\/param:lr$/), source: '0.1', destination: '0.2' }]);
    // usage and configuration mistakes: exit 2, one line, nothing compared
    for (const [args, message] of [
      [['verify', 'sample/mlruns'], /missing required argument 'dst'/],
      [['verify', 'sample/mlruns', './no/such/place'], /destination "\.\/no\/such\/place" does not exist/],
      [['verify', 'sample/mlruns', out, '--sample', '0'], /--sample takes a whole number/],
      [['verify', 'sample/mlruns', out, '--experiment', 'nope'], /experiment "nope" is not in/],
    ] as const) {
      const result = await cli([...args]);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
  });
  it('has examples in the top-level help, and copy --help names every kind of destination', async () => {
    const top = await cli(['--help']);
    expect(top.stdout).toMatch(/Examples:\n(  \$ trackshift \w.*\n){4,}/);
    expect(top.stdout).toMatch(/copy experiments, runs and registered models/);
    const copy = (await cli(['copy', '--help'])).stdout.replace(/\s+/g, ' ');
    const dst = copy.slice(copy.indexOf('dst '), copy.indexOf('Options:'));
    for (const kind of ['MLflow server URL', 'databricks://PROFILE', 'databricks-uc://PROFILE', 'mlruns:NEW_FOLDER', 'bundle', 'exim:DIR', 'sqlite:///mlflow.db', 'postgresql://user:pw@host/db', 'mysql://user:pw@host/db', 'written directly']) {
      expect(dst).toContain(kind);
    }
    const src = copy.slice(copy.indexOf('src '), copy.indexOf('dst '));
    for (const kind of ['MLflow server URL', 'databricks://', 'sqlite:///', 'postgresql://', 'mysql://', 'mlruns folder', 'bundle', 'mlflow-export-import']) expect(src).toContain(kind);
  });

  it('refuses a URI scheme that no connector reads or writes, on every verb, and writes no folder for it', async () => {
    const dir = temp();
    const runs: Array<[string, string[]]> = [
      ['export', ['export', SAMPLE, 's3://bucket/x']],
      ['copy', ['copy', SAMPLE, 's3://bucket/x']],
      ['copy', ['copy', 'gs://bucket/x', SAMPLE]],
      ['import', ['import', 'ftp://host/export', join(dir, 'never')]],
      ['verify', ['verify', SAMPLE, 'azure://container/x']],
      ['ls', ['ls', 's3://bucket/x']],
    ];
    for (const [verb, args] of runs) {
      const result = await cli(args, {}, dir);
      expect(result.code, `${verb}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(/trackshift does not read or write (s3|gs|ftp|azure):\/\/ locations\. Accepted forms: .*mlflow: \(an MLflow tracking server/);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    expect(readdirSync(dir)).toEqual([]); // no ./s3:/bucket/x
  });
});
