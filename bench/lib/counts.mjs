/**
 * Checking what a contender wrote by counting: the runs, workload params and tags, metric points
 * and artifact files and bytes of the bench experiment, against what bench/fill_workload.py
 * wrote. For destinations `trackshift verify` cannot pair with the source run by run (the Python
 * tools' copies carry no trackshift source tags).
 */
import { EXPERIMENT } from './mlflow.mjs';
import { fmt, sleep } from './processes.mjs';

/** what a complete copy of the workload w holds */
export const expectedCounts = (w) => ({
  runs: w.runs,
  params: w.runs * w.params,
  tags: w.runs * w.tags,
  points: w.runs * w.metrics * w.steps,
  artifactFiles: w.artifactMb > 0 ? w.runs * w.artifacts : 0,
  artifactBytes: w.runs * Math.floor(w.artifactMb * 1024 * 1024),
});

async function api(url, path, body) {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${url}/api/2.0/mlflow/${path}`, body ? { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {});
      const text = await res.text();
      if (res.ok) return JSON.parse(text);
      if (res.status < 500 || attempt >= 4) throw new Error(`${path}: HTTP ${res.status} ${text.slice(0, 200)}`);
    } catch (err) {
      if (attempt >= 4 || /HTTP 4/.test(err.message)) throw err;
    }
    await sleep(500 * 2 ** attempt);
  }
}
async function pool(items, n, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]);
  }));
}

/** the params and tags the workload writes (a tool may add its own) */
export const WORKLOAD_PARAM = /^p\d+$/;
export const WORKLOAD_TAG = /^t\d+$/;

/** What a destination server holds in the experiment, counted through its REST API. */
export async function countServer(url, experimentName = EXPERIMENT) {
  const found = { runs: 0, params: 0, tags: 0, points: 0, artifactFiles: 0, artifactBytes: 0 };
  let experiment;
  try {
    experiment = (await api(url, `experiments/get-by-name?experiment_name=${encodeURIComponent(experimentName)}`)).experiment;
  } catch {
    return found;
  }
  const runs = [];
  let pageToken;
  do {
    const page = await api(url, 'runs/search', { experiment_ids: [experiment.experiment_id], max_results: 1000, page_token: pageToken });
    runs.push(...(page.runs ?? []));
    pageToken = page.next_page_token;
  } while (pageToken);
  found.runs = runs.length;
  const histories = [];
  for (const r of runs) {
    found.params += (r.data.params ?? []).filter((p) => WORKLOAD_PARAM.test(p.key)).length;
    found.tags += (r.data.tags ?? []).filter((t) => WORKLOAD_TAG.test(t.key)).length;
    for (const m of r.data.metrics ?? []) histories.push([r.info.run_id, m.key]);
  }
  await pool(histories, 8, async ([runId, key]) => {
    let token;
    do {
      const q = new URLSearchParams({ run_id: runId, metric_key: key, max_results: '25000', ...(token ? { page_token: token } : {}) });
      const page = await api(url, `metrics/get-history?${q}`);
      found.points += (page.metrics ?? []).length;
      token = page.next_page_token;
    } while (token);
  });
  await pool(runs, 8, async (r) => {
    const stack = [''];
    while (stack.length) {
      const path = stack.pop();
      const q = new URLSearchParams({ run_id: r.info.run_id, ...(path ? { path } : {}) });
      for (const f of (await api(url, `artifacts/list?${q}`)).files ?? []) {
        if (f.is_dir) stack.push(f.path);
        else {
          found.artifactFiles++;
          found.artifactBytes += Number(f.file_size ?? 0);
        }
      }
    }
  });
  return found;
}

const COUNTED = ['runs', 'params', 'tags', 'points', 'artifactFiles', 'artifactBytes'];
/** found against expected: complete, or what is missing */
export function check(found, expected) {
  const missing = COUNTED.filter((k) => found[k] !== expected[k]).map((k) => `${k} ${fmt(found[k])} of ${fmt(expected[k])}`);
  return { found, complete: missing.length === 0, missing };
}
