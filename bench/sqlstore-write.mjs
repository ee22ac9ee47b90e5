#!/usr/bin/env node
/**
 * `trackshift copy ./mlruns sqlite:///…` versus MLflow's own `mlflow migrate-filestore` on the same
 * file store, in one invocation on one machine (this machine is noisy: only the ratio means
 * something), and both databases compared with `trackshift verify`.
 *
 *   npm run build && node bench/sqlstore-write.mjs [--runs 20 --metrics 5 --steps 10000 --params 20]
 *
 * Writes a file store as MLflow's FileStore lays it out (one experiment, `--runs` FINISHED runs of
 * `--metrics` histories of `--steps` points each), makes an empty database with `mlflow db
 * upgrade`, and times both migrations (wall time and peak RSS, by /usr/bin/time). Prints a table
 * and writes it as JSON to bench/results/.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseFlags } from './lib/cli.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
// the mlflow commands run here inherit this: MLflow 3's telemetry would call a host off loopback
process.env.MLFLOW_DISABLE_TELEMETRY ??= 'true';
const CLI = join(ROOT, 'dist', 'cli', 'main.js');
const args = parseFlags(new Set());
const workload = { runs: Number(args.runs ?? 20), metrics: Number(args.metrics ?? 5), steps: Number(args.steps ?? 10_000), params: Number(args.params ?? 20) };
const T0 = 1_700_000_000_000;

/** A file store as FileStore writes it, deterministic (seeded values, fixed times). */
function writeMlruns(root) {
  let seed = 1;
  const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  const store = join(root, 'mlruns');
  const experiment = (id, name) => {
    mkdirSync(join(store, id), { recursive: true });
    writeFileSync(join(store, id, 'meta.yaml'), `artifact_location: file://${join(store, id)}\ncreation_time: ${T0}\nexperiment_id: '${id}'\nlast_update_time: ${T0}\nlifecycle_stage: active\nname: ${name}\n`);
  };
  experiment('0', 'Default');
  experiment('1', 'bench');
  for (let r = 0; r < workload.runs; r++) {
    const id = `a${r.toString(16).padStart(31, '0')}`;
    const dir = join(store, '1', id);
    for (const sub of ['metrics', 'params', 'tags', 'artifacts']) mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(
      join(dir, 'meta.yaml'),
      `artifact_uri: file://${dir}/artifacts\nend_time: ${T0 + 10_000}\nentry_point_name: ''\nexperiment_id: '1'\nlifecycle_stage: active\nrun_id: '${id}'\nrun_name: run-${r}\nrun_uuid: '${id}'\nsource_name: ''\nsource_type: 4\nsource_version: ''\nstart_time: ${T0}\nstatus: 3\ntags: []\nuser_id: bench\n`,
    );
    writeFileSync(join(dir, 'tags', 'mlflow.runName'), `run-${r}`);
    for (let p = 0; p < workload.params; p++) writeFileSync(join(dir, 'params', `p${p}`), String(p));
    for (let m = 0; m < workload.metrics; m++) {
      const lines = [];
      // each run logs after the one before, as runs do: its own time range
      const start = T0 + r * workload.steps * 10;
      for (let s = 0; s < workload.steps; s++) lines.push(`${start + s * 10} ${random()} ${s}\n`);
      writeFileSync(join(dir, 'metrics', `m${m}`), lines.join(''));
    }
  }
}

/** Runs a command under /usr/bin/time: wall seconds and peak RSS in MB. */
function timed(command, commandArgs, env = {}) {
  const result = spawnSync('/usr/bin/time', ['-f', 'TIME %e %M', command, ...commandArgs], { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1e9 });
  const match = /TIME ([\d.]+) (\d+)/.exec(result.stderr ?? '');
  if (result.status !== 0 || !match) throw new Error(`${command} ${commandArgs.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return { seconds: Number(match[1]), rssMb: Math.round(Number(match[2]) / 1024) };
}

function main() {
  const venv = execFileSync('bash', [join(ROOT, 'scripts/python-env.sh')], { encoding: 'utf8' }).trim();
  const mlflow = join(venv, 'bin', 'mlflow');
  const dir = mkdtempSync(join(tmpdir(), 'trackshift-bench-sqlwrite-'));
  try {
    writeMlruns(dir);
    const template = join(dir, 'template.db');
    execFileSync(mlflow, ['db', 'upgrade', `sqlite:///${template}`], { stdio: 'ignore' });
    const ours = join(dir, 'ours', 'mlflow.db');
    mkdirSync(dirname(ours));
    copyFileSync(template, ours);
    const points = workload.runs * workload.metrics * workload.steps;
    const trackshift = timed(process.execPath, [CLI, 'copy', join(dir, 'mlruns'), `sqlite:///${ours}`, '--state-dir', join(dir, 'state')]);
    const theirs = join(dir, 'theirs.db');
    const migrate = timed(mlflow, ['migrate-filestore', '--source', dir, '--target', `sqlite:///${theirs}`, '--no-progress'], { MLFLOW_ALLOW_FILE_STORE: 'true' });
    const verify = spawnSync(process.execPath, [CLI, 'verify', `sqlite:///${theirs}`, `sqlite:///${ours}`, '--json'], { encoding: 'utf8', maxBuffer: 1e9 });
    const rows = [
      ['mlflow migrate-filestore', migrate],
      ['trackshift copy → sqlite', trackshift],
    ];
    console.log(`${workload.runs} runs × ${workload.metrics} metrics × ${workload.steps} steps = ${points.toLocaleString('en')} points; ${cpus().length} CPUs`);
    console.log('tool                          wall s   points/s    peak RSS MB');
    for (const [name, r] of rows) console.log(`${name.padEnd(28)}  ${r.seconds.toFixed(1).padStart(6)}  ${Math.round(points / r.seconds).toLocaleString('en').padStart(9)}  ${String(r.rssMb).padStart(11)}`);
    console.log(`trackshift is ${(migrate.seconds / trackshift.seconds).toFixed(1)}× faster; verify of the two databases: ${verify.status === 0 ? 'equal' : `exit ${verify.status}`}`);
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    const out = join(ROOT, 'bench', 'results', `sqlstore-write-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(out, JSON.stringify({ workload, points, cpus: cpus().length, migrateFilestore: migrate, trackshift, verifyExit: verify.status }, null, 2));
    console.log(`written to ${out}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
