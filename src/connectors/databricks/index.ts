/**
 * Databricks workspaces: `databricks[://PROFILE]` (tracking and the workspace model registry)
 * and `databricks-uc[://PROFILE]` (the same tracking, with Unity Catalog as the registry).
 */
import { retrySide, type ConnectorFactory, type ConnectorTarget } from '../types.js';
import { UsageError } from '../../util/errors.js';
import { MlflowApi } from '../mlflow-common/client.js';
import { chunkSettings } from './artifacts.js';
import { parseAddress, resolveConfig } from './config.js';
import type { DatabricksStore } from './write.js';
import { decodingSource } from '../encoding/decode.js';

async function open(target: ConnectorTarget): Promise<DatabricksStore> {
  const address = parseAddress(target.location);
  if (!address) throw new UsageError(`"${target.location}" is not a Databricks URI; use databricks, databricks://PROFILE, databricks-uc or databricks-uc://PROFILE`);
  const config = resolveConfig(target, address);
  const chunking = chunkSettings(target.env);
  const side = target.side.toUpperCase();
  const api = new MlflowApi(
    { ...target, location: config.host },
    {
      token: config.token,
      credentialsHint: `The token comes from ${config.origin}; set TRACKSHIFT_${side}_DATABRICKS_TOKEN${address.profile ? '' : ' (or DATABRICKS_TOKEN)'}, or fix the profile`,
    },
  );
  try {
    await api.checkReachable();
  } catch (err) {
    await api.close();
    throw err;
  }
  // the store, the registry and their storage clients load only when a workspace is used
  const [{ SignedUrlClient }, { DatabricksStore }, { UcRegistry }] = await Promise.all([import('../../util/signed-url.js'), import('./write.js'), import('./registry.js')]);
  // one client for every signed URL and storage endpoint of this side (closed with the store)
  const signed = new SignedUrlClient(chunking, target.retry, retrySide(target));
  return new DatabricksStore(api, address.unityCatalog, address.unityCatalog ? new UcRegistry(api, target.env, signed) : undefined, signed);
}

export const databricksConnector: ConnectorFactory = {
  name: 'databricks',
  description: 'a Databricks workspace: databricks://PROFILE, or databricks-uc://PROFILE for the Unity Catalog registry',
  detect: async (location) => parseAddress(location) !== undefined,
  openSource: async (target) => decodingSource(await open(target)),
  openDestination: open,
};
