/**
 * From what a user typed to a connector. `FORMAT:LOCATION` forces a connector; an
 * `http(s)://` URI is an MLflow server; a bare path is recognised by its content.
 * A new system is one import and one line in CONNECTORS.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { UsageError } from '../util/errors.js';
import { bundleConnector } from './bundle/index.js';
import { cometConnector } from './comet/index.js';
import { cometOfflineConnector } from './comet-offline/index.js';
import { cometxConnector } from './cometx/index.js';
import { databricksConnector } from './databricks/index.js';
import { eximConnector } from './exim/index.js';
import { sqlStoreConnector } from './sqlstore/index.js';
import { memoryConnector } from './memory/index.js';
import { mlflowConnector } from './mlflow/index.js';
import { mlrunsConnector } from './mlruns/index.js';
import { neptuneApiConnector } from './neptune-api/index.js';
import { neptuneScaleConnector } from './neptune-scale/index.js';
import { neptune2Connector } from './neptune2/index.js';
import { neptune3Connector } from './neptune3/index.js';
import { neptuneExportConnector } from './neptune-export/index.js';
import type { RetryContext } from '../util/retry.js';
import { CombinedSource } from './combined.js';
import type { ConnectorFactory, ConnectorTarget, Destination, Source } from './types.js';

/** In detection order: the first whose detect() says yes wins. */
export const CONNECTORS: readonly ConnectorFactory[] = [
  databricksConnector,
  cometConnector,
  neptuneApiConnector,
  neptuneScaleConnector,
  mlflowConnector,
  sqlStoreConnector,
  cometOfflineConnector,
  cometxConnector,
  neptune2Connector,
  neptune3Connector,
  neptuneExportConnector,
  bundleConnector,
  mlrunsConnector,
  eximConnector,
  memoryConnector,
];

interface Resolved {
  factory: ConnectorFactory;
  location: string;
  /** other connectors that read their own runs from the same folder (`sharesFolders`) */
  alongside?: ConnectorFactory[];
}

function splitForced(input: string): Resolved | undefined {
  const match = /^([a-z][a-z0-9+-]*):(?!\/\/)(.*)$/i.exec(input);
  if (!match) return undefined;
  const [, prefix, rest] = match;
  const factory = CONNECTORS.find((c) => c.name === prefix!.toLowerCase());
  if (!factory) {
    // `C:\path` on Windows, or a path that happens to hold a colon: not a prefix
    if (prefix!.length === 1) return undefined;
    throw new UsageError(`unknown format "${prefix}:" in "${input}". Accepted formats: ${formatList()}.`);
  }
  return { factory, location: rest! };
}

function formatList(): string {
  return CONNECTORS.map((c) => `${c.name}: (${c.description})`).join('; ');
}

function isEmptyOrMissingDir(path: string): boolean {
  if (!existsSync(path)) return true;
  return statSync(path).isDirectory() && readdirSync(path).length === 0;
}

async function resolve(input: string, role: 'source' | 'destination', fallback?: ConnectorFactory): Promise<Resolved> {
  if (!input) throw new UsageError(`a ${role} is required`);
  const forced = splitForced(input);
  if (forced) return forced;
  const detected: ConnectorFactory[] = [];
  for (const factory of CONNECTORS) if (await factory.detect(input)) detected.push(factory);
  if (detected.length > 0) {
    const [first, ...others] = detected;
    const alongside = first!.sharesFolders ? others.filter((f) => f.sharesFolders && f.openSource) : [];
    return { factory: first!, location: input, ...(alongside.length > 0 ? { alongside } : {}) };
  }
  // `s3://bucket/x` is no folder name: made into one, it would be written as ./s3:/bucket/x
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(input)?.[1];
  if (scheme) {
    throw new UsageError(`${role} "${input}": trackshift does not read or write ${scheme}:// locations. Accepted forms: ${formatList()}; or a local folder path.`);
  }
  if (fallback && isEmptyOrMissingDir(input)) return { factory: fallback, location: input };
  const what = existsSync(input) ? 'exists but is not a format trackshift recognises' : 'does not exist';
  throw new UsageError(
    `${role} "${input}" ${what}. Give an MLflow server URL (http://host:port), a trackshift bundle, ` +
      `an mlruns folder, an mlflow-export-import directory, a .neptune folder, a neptune-exporter export, Comet offline archives, a Comet instance (comet://WORKSPACE[/PROJECT]), ` +
      `or force a format with FORMAT:PATH. Formats: ${formatList()}.`,
  );
}

/** The connector `input` resolves to as a source (what a verb asks its capabilities of). */
export async function connectorFor(input: string): Promise<ConnectorFactory> {
  return (await resolve(input, 'source')).factory;
}

function target(location: string, side: ConnectorTarget['side'], env: NodeJS.ProcessEnv, dryRun = false, retry?: RetryContext): ConnectorTarget {
  return { location, side, env, dryRun, ...(retry ? { retry } : {}) };
}

/** `side` picks the credentials: verify reads its destination as a source, with the destination's. */
export async function openSource(input: string, env: NodeJS.ProcessEnv = process.env, side: ConnectorTarget['side'] = 'src', retry?: RetryContext): Promise<Source> {
  const { factory, location, alongside } = await resolve(input, side === 'src' ? 'source' : 'destination');
  if (!factory.openSource) throw new UsageError(`${factory.name} cannot be read from (it is a destination only): ${input}`);
  const open = (f: ConnectorFactory) => f.openSource!(target(location, side, env, false, retry));
  if (!alongside) return open(factory);
  const parts: Array<{ name: string; source: Source }> = [];
  try {
    for (const f of [factory, ...alongside]) parts.push({ name: f.name, source: await open(f) });
  } catch (err) {
    await Promise.all(parts.map((p) => p.source.close?.()));
    throw err;
  }
  return new CombinedSource(input, parts);
}

/**
 * A destination that does not exist yet (or an empty folder) becomes a new bundle when
 * `newFolderFormat` is given (export), and is refused otherwise.
 */
export async function openDestination(
  input: string,
  env: NodeJS.ProcessEnv = process.env,
  newFolderFormat: ConnectorFactory | undefined = undefined,
  dryRun = false,
  retry?: RetryContext,
  workers?: number,
): Promise<Destination> {
  const { factory, location } = await resolve(input, 'destination', newFolderFormat);
  if (!factory.openDestination) throw new UsageError(`${factory.name} cannot be written to yet (it is a source only): ${input}`);
  return factory.openDestination({ ...target(location, 'dst', env, dryRun, retry), ...(workers ? { workers } : {}) });
}

export { bundleConnector, eximConnector };
