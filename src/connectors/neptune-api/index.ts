/**
 * A Neptune 2.x server's project, `neptune://WORKSPACE/PROJECT`, through the API the neptune 1.14
 * client uses. The API token (NEPTUNE_API_TOKEN, or TRACKSHIFT_SRC_/TRACKSHIFT_DST_NEPTUNE_API_TOKEN
 * for one side) names the server. Read (read.ts) and written (write.ts).
 */
import { UsageError } from '../../util/errors.js';
import { tokenOf } from '../neptune-common/token.js';
import { retrySide, type ConnectorFactory, type ConnectorTarget } from '../types.js';

const URI = /^neptune:\/\/([^/\s]+)\/([^/\s]+)\/?$/;

export const neptuneApiConnector: ConnectorFactory = {
  name: 'neptune-api',
  description: 'a Neptune 2.x server: neptune://WORKSPACE/PROJECT, the token in NEPTUNE_API_TOKEN (read and written)',
  detect: async (location) => location.startsWith('neptune://'),
  openSource: async (target) => {
    const { api, project } = await connect(target);
    const [{ NeptuneApiSource }, { decodingSource }] = await Promise.all([import('./read.js'), import('../encoding/decode.js')]);
    return decodingSource(new NeptuneApiSource(api, project));
  },
  openDestination: async (target) => {
    const { api, project } = await connect(target);
    const { NeptuneApiDestination } = await import('./write.js');
    return new NeptuneApiDestination(api, project);
  },
};

async function connect(target: ConnectorTarget) {
  const m = URI.exec(target.location);
  if (!m) throw new UsageError(`${target.location}: a Neptune project is neptune://WORKSPACE/PROJECT`);
  const { NeptuneApi } = await import('./api.js');
  const { token, origin } = tokenOf(target);
  return { api: new NeptuneApi({ token, origin, ...(target.retry ? { retry: target.retry } : {}), side: retrySide(target) }), project: `${m[1]}/${m[2]}` };
}
