/**
 * A Neptune 3.x server's project, `neptune-scale://WORKSPACE/PROJECT`, through the API the
 * neptune-scale 0.30 client writes with (write.ts) and neptune-query 1.8 reads with (read.ts, query.ts). The API
 * token (NEPTUNE_API_TOKEN, or TRACKSHIFT_SRC_/TRACKSHIFT_DST_NEPTUNE_API_TOKEN for one side)
 * names the server (neptune-common/token.ts).
 */
import { UsageError } from '../../util/errors.js';
import { tokenOf } from '../neptune-common/token.js';
import { retrySide, type ConnectorFactory, type ConnectorTarget } from '../types.js';

const URI = /^neptune-scale:\/\/([^/\s]+)\/([^/\s]+)\/?$/;

export const neptuneScaleConnector: ConnectorFactory = {
  name: 'neptune-scale',
  description: 'a Neptune 3.x server: neptune-scale://WORKSPACE/PROJECT, the token in NEPTUNE_API_TOKEN (read and written; the project is created when missing)',
  detect: async (location) => location.startsWith('neptune-scale://'),
  openSource: async (target) => {
    const { api, project } = await connect(target);
    const [{ ScaleQuery }, { NeptuneScaleSource }, { decodingSource }] = await Promise.all([import('./query.js'), import('./read.js'), import('../encoding/decode.js')]);
    // runs written by trackshift keep what Neptune cannot hold in the .trackshift/ encoding
    return decodingSource(new NeptuneScaleSource(new ScaleQuery(api, project, { ...(target.retry ? { retry: target.retry } : {}), side: retrySide(target) })));
  },
  openDestination: async (target) => {
    const { api, project } = await connect(target);
    const [{ NeptuneScaleDestination }, { SignedUrlClient }] = await Promise.all([import('./write.js'), import('../../util/signed-url.js')]);
    // the storage's signed URLs carry no credentials of ours; their retries count on this side
    return new NeptuneScaleDestination(api, new SignedUrlClient(undefined, target.retry, retrySide(target)), project, Boolean(target.dryRun));
  },
};

/** The API client and the project a target names. */
export async function connect(target: ConnectorTarget) {
  const m = URI.exec(target.location);
  if (!m) throw new UsageError(`${target.location}: a Neptune 3.x project is neptune-scale://WORKSPACE/PROJECT`);
  const { NeptuneScaleApi } = await import('./api.js');
  const { token, origin } = tokenOf(target);
  return { api: new NeptuneScaleApi({ token, origin, ...(target.retry ? { retry: target.retry } : {}), side: retrySide(target) }), project: `${m[1]}/${m[2]}` };
}
