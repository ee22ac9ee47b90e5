/**
 * Measuring one command as the benchmark scripts do: wall time, peak RSS of its process tree
 * (the largest of GNU time's maximum RSS and the sums of VmRSS over the tree sampled every
 * 100 ms), CPU of the tree, the mean 1-minute load average meanwhile, and what the servers it
 * talked to spent meanwhile (through the caller's `watch`). Linux only: it reads /proc.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { ROOT, groups, log, tail } from './processes.mjs';

// ---- /proc: trees, RSS, CPU ----

const CLK_TCK = 100;
export function processTable() {
  const table = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      table.set(Number(name), { ppid: Number(fields[1]), cpu: (Number(fields[11]) + Number(fields[12])) / CLK_TCK });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}
export function treeOf(root, table = processTable()) {
  const children = new Map();
  for (const [pid, p] of table) children.set(p.ppid, [...(children.get(p.ppid) ?? []), pid]);
  const pids = [];
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    if (!table.has(pid)) continue;
    pids.push(pid);
    stack.push(...(children.get(pid) ?? []));
  }
  return { pids, table };
}
export function statusKb(pid, field) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}
/** CPU seconds used so far by a process tree (a server's, between two readings) */
export const treeCpu = (root) => {
  const { pids, table } = treeOf(root);
  return pids.reduce((s, pid) => s + table.get(pid).cpu, 0);
};

const TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;

/**
 * Runs one measured command; stdout and stderr go to files in logDir. `watch`, when given, is
 * called (awaited) just before the start and returns a function called (awaited) after the end:
 * its { serverCpuSeconds, serverRequests } go into the result. On failure the log shows the end
 * of the command's stderr, or with `failureOutput: 'both'` the ends of its stdout and stderr.
 */
export async function measure(label, command, argv, { env = {}, cwd = ROOT, logDir, watch, failureOutput = 'stderr' } = {}) {
  const base = join(logDir, label.replace(/[^\w.-]+/g, '_'));
  const timeFile = `${base}.time`;
  const full = TIME ? [TIME, ['-f', '%M %U %S', '-o', timeFile, command, ...argv]] : [command, argv];
  const stdoutFd = openSync(`${base}.stdout`, 'w');
  const stderrFd = openSync(`${base}.stderr`, 'w');
  const watched = watch ? await watch() : undefined;
  const started = process.hrtime.bigint();
  const child = spawn(full[0], full[1], { cwd, detached: true, stdio: ['ignore', stdoutFd, stderrFd], env: { ...process.env, ...env } });
  groups.add(child.pid);
  let peakKb = 0;
  const cpuSeen = new Map();
  const sample = () => {
    const { pids, table } = treeOf(child.pid);
    // the GNU time wrapper itself is not counted
    const measured = TIME ? pids.filter((p) => p !== child.pid) : pids;
    let sum = 0;
    for (const pid of measured) {
      sum += statusKb(pid, 'VmRSS');
      peakKb = Math.max(peakKb, statusKb(pid, 'VmHWM'));
      cpuSeen.set(pid, table.get(pid).cpu);
    }
    peakKb = Math.max(peakKb, sum);
  };
  const timer = setInterval(sample, 100);
  // how busy the machine was meanwhile (others share it): the 1-minute load average, each second
  const loads = [loadavg()[0]];
  const loadTimer = setInterval(() => loads.push(loadavg()[0]), 1000);
  const code = await new Promise((resolve) => child.on('close', (c) => resolve(c)));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  clearInterval(timer);
  clearInterval(loadTimer);
  groups.delete(child.pid);
  closeSync(stdoutFd);
  closeSync(stderrFd);
  let cpuSeconds = [...cpuSeen.values()].reduce((a, b) => a + b, 0);
  if (TIME && existsSync(timeFile)) {
    const m = readFileSync(timeFile, 'utf8').trim().split('\n').pop().match(/^(\d+) ([\d.]+) ([\d.]+)$/);
    if (m) {
      peakKb = Math.max(peakKb, Number(m[1]));
      cpuSeconds = Number(m[2]) + Number(m[3]);
    }
  }
  const { serverCpuSeconds, serverRequests } = watched ? await watched() : {};
  if (code !== 0) {
    const output = failureOutput === 'both' ? `its output ends with:\n${tail(`${base}.stdout`, 1500)}\n${tail(`${base}.stderr`, 1500)}` : `stderr ends with:\n${tail(`${base}.stderr`)}`;
    log(`${label} exited with ${code}; ${output}`);
  }
  const loadAverage = loads.reduce((a, b) => a + b, 0) / loads.length;
  return { label, code, seconds, peakRssMb: peakKb / 1024, cpuSeconds, loadAverage, serverCpuSeconds, serverRequests, stdout: readFileSync(`${base}.stdout`, 'utf8'), stderrFile: `${base}.stderr` };
}

/**
 * measure() with the CPU that the MLflow servers given ({ name: server from bench/lib/mlflow.mjs })
 * spent meanwhile and the requests they received (from their access logs), under those names.
 */
export const measureWithServers = (label, command, argv, { env = {}, logDir, servers = {} } = {}) =>
  measure(label, command, argv, {
    env,
    logDir,
    watch: () => {
      const serverCpu0 = Object.fromEntries(Object.entries(servers).map(([k, s]) => [k, treeCpu(s.pid)]));
      const serverLog0 = Object.fromEntries(Object.entries(servers).map(([k, s]) => [k, statSync(s.logFile).size]));
      return () => ({
        serverCpuSeconds: Object.fromEntries(Object.entries(servers).map(([k, s]) => [k, treeCpu(s.pid) - serverCpu0[k]])),
        serverRequests: Object.fromEntries(Object.entries(servers).map(([k, s]) => [k, requestCounts(s.logFile, serverLog0[k])])),
      });
    },
  });

/** requests per endpoint (and how many were not 2xx) in a server's access log after an offset */
function requestCounts(logFile, offset) {
  const text = readFileSync(logFile).subarray(offset).toString('utf8');
  const counts = {};
  for (const m of text.matchAll(/"(GET|POST|PUT|PATCH|DELETE) ([^ ?"]+)[^"]*" (\d{3})/g)) {
    const endpoint = `${m[1]} ${m[2].replace(/^(\/api\/2\.0\/mlflow-artifacts\/artifacts)\/.*/, '$1/…').replace(/^\/ajax-api\//, '/api/')}`;
    const c = (counts[endpoint] ??= { count: 0, errors: 0 });
    c.count++;
    if (!m[3].startsWith('2')) c.errors++;
  }
  return counts;
}

// ---- the machine ----

/** what the machine is and how loaded at the start (call machineEnd at the end) */
export const machineInfo = () => ({ cpus: cpus().length, cpu: cpus()[0]?.model ?? 'cpu', memoryGb: Math.round(totalmem() / 2 ** 30), kernel: release(), node: process.version, loadAverageAtStart: loadavg()[0] });
/** notes the load at the end into the machine; the line that tells it */
export function machineEnd(machine) {
  machine.loadAverageAtEnd = loadavg()[0];
  return `machine: ${machine.cpus} × ${machine.cpu}, ${machine.memoryGb} GB, Linux ${machine.kernel}, Node ${machine.node}; load average ${machine.loadAverageAtStart.toFixed(1)} at start, ${machine.loadAverageAtEnd.toFixed(1)} at end`;
}
/** a warning when the rows' mean load averages differ by more than a quarter of the CPUs (at least 1), else undefined */
export function loadSkew(rows) {
  const loads = rows.map((r) => r.loadAverage).filter((l) => l !== undefined);
  if (loads.length > 1 && Math.max(...loads) - Math.min(...loads) > Math.max(1, 0.25 * cpus().length))
    return `!!! the machine's load differed between the contenders (load column: mean 1-minute load average while each ran, on ${cpus().length} CPUs): the ratios are skewed`;
  return undefined;
}
