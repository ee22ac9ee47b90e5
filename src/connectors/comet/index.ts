/**
 * A Comet instance over its REST API: `comet://WORKSPACE` (every project of the workspace) or
 * `comet://WORKSPACE/PROJECT`. The server and API key come from COMET_URL_OVERRIDE and
 * COMET_API_KEY, or the `[comet]` section of ~/.comet.config, as comet_ml reads them; each side of
 * a copy can have its own (TRACKSHIFT_SRC_COMET_API_KEY, TRACKSHIFT_DST_COMET_URL_OVERRIDE …,
 * see ./config.ts). Reading is ./read.ts, writing ./write.ts; the mapping onto the model is
 * comet-common's, as for the offline archives.
 */
import { UsageError } from '../../util/errors.js';
import { decodingSource } from '../encoding/decode.js';
import { retrySide, type ConnectorFactory, type ConnectorTarget } from '../types.js';
import { CometApi } from './api.js';
import { resolveConfig } from './config.js';

const URI = /^comet:\/\/([^/?#]+)(?:\/([^/?#]+))?\/?$/i;

/** `comet://WS[/PROJ]` into its parts (names URL-decoded), or undefined. */
export function parseLocation(location: string): { workspace: string; project?: string } | undefined {
  const match = URI.exec(location.trim());
  if (!match) return undefined;
  try {
    const workspace = decodeURIComponent(match[1]!);
    const project = match[2] !== undefined ? decodeURIComponent(match[2]) : undefined;
    return { workspace, ...(project ? { project } : {}) };
  } catch {
    return undefined;
  }
}

function locationOf(target: ConnectorTarget): { workspace: string; project?: string } {
  const location = target.location.startsWith('comet://') ? target.location : `comet://${target.location.replace(/^\/\//, '')}`;
  const parsed = parseLocation(location);
  if (!parsed) throw new UsageError(`${target.location}: a Comet location is comet://WORKSPACE or comet://WORKSPACE/PROJECT`);
  return parsed;
}

const apiFor = (target: ConnectorTarget) => new CometApi(resolveConfig(target), target.retry, retrySide(target));

export const cometConnector: ConnectorFactory = {
  name: 'comet',
  description: 'a Comet instance over its REST API: comet://WORKSPACE or comet://WORKSPACE/PROJECT (COMET_API_KEY, COMET_URL_OVERRIDE, ~/.comet.config; per side TRACKSHIFT_SRC_/TRACKSHIFT_DST_COMET_API_KEY …)',
  detect: async (location) => /^comet:\/\//i.test(location),
  openSource: async (target) => {
    const { workspace, project } = locationOf(target);
    // what the writer was given beyond what Comet holds (points without times…) is in the `.trackshift/` encoding
    const { CometRestSource } = await import('./read.js');
    return decodingSource(new CometRestSource(apiFor(target), { workspace, ...(project ? { project } : {}) }));
  },
  openDestination: async (target) => {
    const { workspace, project } = locationOf(target);
    const { CometRestDestination } = await import('./write.js');
    return new CometRestDestination(apiFor(target), { workspace, ...(project ? { project } : {}), ...(target.dryRun ? { dryRun: true } : {}) });
  },
};
