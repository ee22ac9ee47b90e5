/**
 * Runs written into the Neptune-shaped test server by the real neptune-scale client
 * (test/fixtures/neptune3_server_write.py), and what the fixture says it logged.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool } from '../harness/mlflow-server.js';
import type { NeptuneServer } from '../harness/neptune-server/index.js';

export interface LoggedPoint {
  step: number;
  value: number | string;
  timestamp: number;
}

export interface Written {
  errors: string[];
  warnings: string[];
  parent: {
    id: string;
    experiment: string;
    creationTime: number;
    configs: Record<string, number | boolean | string | string[]>;
    tags: string[];
    groupTags: string[];
    loss: LoggedPoint[];
    notes: LoggedPoint[];
    histograms: Array<{ step: number; edges: number[]; counts: number[] }>;
    readme: string;
    samples: Array<{ step: number; text: string; mimeType: string; size: number }>;
  };
  child: { id: string; forkParent: string; forkStep: number; loss: LoggedPoint[] };
}

/** `full`: a rich run and its fork; `missing-project`: a run into a project that is not there; `refusals`: what Neptune refuses. */
export async function writeWithNeptuneScale(server: NeptuneServer, mode: 'full' | 'missing-project' | 'refusals', project: string): Promise<Written> {
  const logDir = mkdtempSync(join(tmpdir(), 'trackshift-neptune-scale-written-'));
  const out = await runTool('neptune3', 'python', ['test/fixtures/neptune3_server_write.py', logDir, mode, project], server.scaleEnv());
  const line = out.split('\n').find((l) => l.startsWith('{"errors"'));
  if (!line) throw new Error(`neptune3_server_write.py printed no result:\n${out}`);
  return JSON.parse(line) as Written;
}
