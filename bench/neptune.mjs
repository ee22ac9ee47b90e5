#!/usr/bin/env node
/**
 * Reading Neptune data on disk: trackshift's source against a Python baseline reading the same
 * file, in one invocation on one machine (this machine is noisy: only the ratios mean something).
 *
 *   npm run build && node bench/neptune.mjs [--format export|neptune3|both] [--points 250000,1000000]
 *
 * export:   a neptune-exporter parquet export (test/fixtures/neptune_export.py --bench: one run,
 *           one float series, fractional steps, 100,000 rows a row group, 2,000,000 rows a part),
 *           read by trackshift's neptune-export source (hyparquet, row group by row group) and by
 *           pyarrow + pandas.
 * neptune3: a neptune-scale offline database (run_operations.sqlite3) logged by the real pinned
 *           client in offline mode (test/fixtures/neptune3_many_points.py --log: 10 float series
 *           logged together, one log_metrics call a step), read by trackshift's neptune3 source
 *           and by sqlite3 + the client's own protobuf classes collecting every point into lists.
 *
 * Fixtures are written under /dev/shm when there is one. Each reader runs in its own process so that its peak RSS is its own; trackshift reads every
 * float series of every run page by page, as a copy does. Prints points/s and peak RSS for both
 * and their ratios; writes the table to bench/results/neptune-<format>.json.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const FIXTURES = join(ROOT, 'test', 'fixtures');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, value, i, all) => (value.startsWith('--') ? [...pairs, [value.slice(2), all[i + 1]]] : pairs), []),
);
const sizes = String(args.points ?? '250000,1000000').split(',').map(Number);
const format = args.format ?? 'both';
/**
 * Fixtures are written in memory when the machine has /dev/shm: neptune-scale commits every
 * log call with `synchronous = FULL`, and on a shared disk its fsyncs, not the client, set the pace.
 */
const SCRATCH = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** The pinned Python environment of a pin file under python/ (created once, cached). */
const pythonOf = (pins) => join(execFileSync('bash', [join(ROOT, 'scripts/python-env.sh'), pins], { encoding: 'utf8' }).trim(), 'bin', 'python');
/** A Python script's JSON answer; its stderr is shown only when it fails. */
const pythonJson = (python, script, scriptArgs) => JSON.parse(execFileSync(python, [join(FIXTURES, script), ...scriptArgs], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 100_000_000 }));

/** What each format's benchmark writes and how its baseline reads it. */
const FORMATS = {
  export: {
    title: 'neptune-exporter parquet, one float series',
    baseline: 'pyarrow+pandas',
    pins: 'requirements.txt',
    /** writes n points into dir; the source URI and the baseline's command */
    write(python, dir, n) {
      pythonJson(python, 'neptune_export.py', [dir, '--bench', String(n)]);
      return { uri: `neptune-export:${dir}`, baseline: ['neptune_export.py', [dir, '--read']] };
    },
  },
  neptune3: {
    title: 'neptune-scale offline SQLite written by the real client, 10 float series logged together',
    baseline: 'sqlite3+protobuf',
    pins: 'requirements-neptune3.txt',
    write(python, dir, n) {
      const logged = pythonJson(python, 'neptune3_many_points.py', ['--log', dir, String(n)]);
      return { uri: `neptune3:${logged.database}`, baseline: ['neptune3_many_points.py', ['--read', logged.database]], writeSeconds: logged.seconds };
    },
  },
};

/** trackshift's reader, in a child process: every float series of every run, page by page. */
const TRACKSHIFT_READ = `
import { openSource } from ${JSON.stringify(join(ROOT, 'dist', 'connectors', 'resolve.js'))};
const started = performance.now();
const source = await openSource(process.argv[1]);
let points = 0;
for await (const exp of source.listExperiments())
  for await (const run of source.listRuns(exp.id, { includeDeleted: true }))
    for (const s of run.series) if (s.type === 'float') for await (const page of source.readMetric(run, s.key)) points += page.length;
await source.close?.();
console.log(JSON.stringify({ points, seconds: (performance.now() - started) / 1000, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
`;

const BASELINE_WIDTH = 25;
const mb = (bytes) => (bytes / 1024 / 1024).toFixed(0);
const rate = (r) => Math.round(r.points / r.seconds);

function bench(name) {
  const spec = FORMATS[name];
  const python = pythonOf(spec.pins);
  const results = [];
  for (const n of sizes) {
    const dir = mkdtempSync(join(SCRATCH, `trackshift-bench-neptune-${name}-`));
    try {
      const written = spec.write(python, dir, n);
      const trackshift = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', TRACKSHIFT_READ, written.uri], { encoding: 'utf8' }));
      const baseline = pythonJson(python, ...written.baseline);
      if (trackshift.points !== n || baseline.points !== n) throw new Error(`read ${trackshift.points} (trackshift) and ${baseline.points} (${spec.baseline}) points, wrote ${n}`);
      results.push({
        points: n,
        ...(written.writeSeconds !== undefined ? { writeSeconds: written.writeSeconds } : {}),
        trackshift,
        baseline,
        speedRatio: rate(trackshift) / rate(baseline),
        rssRatio: trackshift.peakRssBytes / baseline.peakRssBytes,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const table = [
    `${spec.title}; ${cpus().length} CPUs, node ${process.version}`,
    `points     | trackshift points/s | peak RSS MB | ${`${spec.baseline} points/s`.padStart(BASELINE_WIDTH)} | peak RSS MB | speed ratio | RSS ratio`,
    ...results.map((r) =>
      [String(r.points).padEnd(10), String(rate(r.trackshift)).padStart(19), mb(r.trackshift.peakRssBytes).padStart(11), String(rate(r.baseline)).padStart(BASELINE_WIDTH), mb(r.baseline.peakRssBytes).padStart(11), r.speedRatio.toFixed(2).padStart(11), r.rssRatio.toFixed(2).padStart(9)].join(' | '),
    ),
    ...results.filter((r) => r.writeSeconds !== undefined).map((r) => `(the client logged ${r.points} points in ${r.writeSeconds.toFixed(0)} s)`),
  ];
  console.log(table.join('\n'));
  const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const file = join(ROOT, 'bench', 'results', `neptune-${name}.json`);
  writeFileSync(file, JSON.stringify({ format: name, baseline: spec.baseline, commit, date: new Date().toISOString(), cpus: cpus().length, node: process.version, table, results }, null, 2) + '\n');
  console.log(`written to ${file}\n`);
}

if (format !== 'both' && !(format in FORMATS)) throw new Error(`--format ${format}: give export, neptune3 or both`);
for (const name of format === 'both' ? Object.keys(FORMATS) : [format]) bench(name);
