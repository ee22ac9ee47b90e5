/**
 * The Python mlflow-migration tools (the maintained fork of mlflow-export-import,
 * python/requirements-migration.txt) as the benchmarks run them: one experiment exported from a
 * tracking server into a folder, then imported from that folder into another server, each half
 * measured (bench/lib/measure.mjs) with the servers' CPU meanwhile.
 */
import { join } from 'node:path';
import { measureWithServers } from './measure.mjs';
import { EXPERIMENT } from './mlflow.mjs';
import { dirBytes, log } from './processes.mjs';

/** the environment of an mlflow-migration command talking to `uri` */
export const migrationEnv = (uri) => ({ MLFLOW_TRACKING_URI: uri, GIT_PYTHON_REFRESH: 'quiet', PYTHONUNBUFFERED: '1', MLFLOW_ALLOW_FILE_STORE: 'true' });

/** `mlflow-migration-export-experiment` of the bench experiment into outDir; stagedBytes: what it wrote there */
export async function pythonExport(migrationVenv, label, trackingUri, outDir, { logDir, servers }) {
  log(`${label}: mlflow-migration-export-experiment from ${trackingUri}`);
  const m = await measureWithServers(label, join(migrationVenv, 'bin', 'mlflow-migration-export-experiment'), ['--experiment', EXPERIMENT, '--output-dir', outDir], { env: migrationEnv(trackingUri), logDir, servers });
  m.stagedBytes = dirBytes(outDir);
  return m;
}

/** `mlflow-migration-import-experiment` of inDir into the server dst */
export async function pythonImport(migrationVenv, label, inDir, dst, { logDir, servers }) {
  log(`${label}: mlflow-migration-import-experiment into ${dst.url}`);
  return measureWithServers(label, join(migrationVenv, 'bin', 'mlflow-migration-import-experiment'), ['--experiment-name', EXPERIMENT, '--input-dir', inDir], { env: migrationEnv(dst.url), logDir, servers });
}

/** export then import, one contender: times added, the larger peak */
export const both = (a, b) => ({
  code: a.code || b.code,
  seconds: a.seconds + b.seconds,
  peakRssMb: Math.max(a.peakRssMb, b.peakRssMb),
  cpuSeconds: a.cpuSeconds + b.cpuSeconds,
  loadAverage: (a.loadAverage * a.seconds + b.loadAverage * b.seconds) / (a.seconds + b.seconds),
  serverCpuSeconds: { src: a.serverCpuSeconds.src ?? 0, dst: b.serverCpuSeconds.dst ?? 0 },
  serverRequests: { src: a.serverRequests.src ?? {}, dst: b.serverRequests.dst ?? {} },
});
