#!/usr/bin/env node
/**
 * Reading a neptune-exporter parquet export: trackshift's source (hyparquet, row group by row
 * group) against pyarrow + pandas reading the same files, in one invocation on one machine
 * (this machine is noisy: only the ratio means something).
 *
 *   npm run build && node bench/neptune-export.mjs [--points 250000,1000000]
 *
 * For each size, test/fixtures/neptune_export.py --bench writes one run with a float series of
 * that many points (fractional steps, 100,000 rows a row group, 2,000,000 rows a part) in the
 * exporter's schema; each reader runs in its own process so that its peak RSS is its own.
 * Prints points/s and peak RSS for both, and their ratio; writes the table to bench/results/.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const FIXTURE = join(ROOT, 'test', 'fixtures', 'neptune_export.py');
const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, value, i, all) => (value.startsWith('--') ? [...pairs, [value.slice(2), all[i + 1]]] : pairs), []),
);
const sizes = String(args.points ?? '250000,1000000').split(',').map(Number);

/** trackshift's reader, in a child process: every float series of every run, page by page. */
const TRACKSHIFT_READ = `
import { openSource } from ${JSON.stringify(join(ROOT, 'dist', 'connectors', 'resolve.js'))};
const started = performance.now();
const source = await openSource('neptune-export:' + process.argv[1]);
let points = 0;
for await (const exp of source.listExperiments())
  for await (const run of source.listRuns(exp.id, { includeDeleted: true }))
    for (const s of run.series) if (s.type === 'float') for await (const page of source.readMetric(run, s.key)) points += page.length;
console.log(JSON.stringify({ points, seconds: (performance.now() - started) / 1000, peakRssBytes: process.resourceUsage().maxRSS * 1024 }));
`;

const mb = (bytes) => (bytes / 1024 / 1024).toFixed(0);
const rate = (r) => Math.round(r.points / r.seconds);

function main() {
  const venv = execFileSync('bash', [join(ROOT, 'scripts/python-env.sh')], { encoding: 'utf8' }).trim();
  const python = join(venv, 'bin', 'python');
  const results = [];
  for (const n of sizes) {
    const dir = mkdtempSync(join(tmpdir(), 'trackshift-bench-nexport-'));
    try {
      execFileSync(python, [FIXTURE, dir, '--bench', String(n)], { stdio: ['ignore', 'ignore', 'inherit'] });
      const trackshift = JSON.parse(execFileSync(process.execPath, ['--input-type=module', '-e', TRACKSHIFT_READ, dir], { encoding: 'utf8' }));
      const pyarrow = JSON.parse(execFileSync(python, [FIXTURE, dir, '--read'], { encoding: 'utf8' }));
      if (trackshift.points !== n || pyarrow.points !== n) throw new Error(`read ${trackshift.points} (trackshift) and ${pyarrow.points} (pyarrow) points, wrote ${n}`);
      results.push({ points: n, trackshift, pyarrow, speedRatio: rate(trackshift) / rate(pyarrow), rssRatio: trackshift.peakRssBytes / pyarrow.peakRssBytes });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`neptune-exporter parquet, one float series; ${cpus().length} CPUs, node ${process.version}`);
  console.log('points     | trackshift points/s | peak RSS MB | pyarrow+pandas points/s | peak RSS MB | speed ratio | RSS ratio');
  for (const r of results) {
    console.log(
      [String(r.points).padEnd(10), String(rate(r.trackshift)).padStart(19), mb(r.trackshift.peakRssBytes).padStart(11), String(rate(r.pyarrow)).padStart(23), mb(r.pyarrow.peakRssBytes).padStart(11), r.speedRatio.toFixed(2).padStart(11), r.rssRatio.toFixed(2).padStart(9)].join(' | '),
    );
  }
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const file = join(ROOT, 'bench', 'results', `neptune-export-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ cpus: cpus().length, node: process.version, results }, null, 2) + '\n');
  console.log(`written to ${file}`);
}

main();
