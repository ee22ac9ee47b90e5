/**
 * MLflow tracking servers (2.x and 3.x), addressed by their http(s):// URL: read and write,
 * through the REST store the MLflow family shares (../mlflow-common, which Databricks uses too).
 */
import type { ConnectorFactory, ConnectorTarget } from '../types.js';
import { MlflowApi } from '../mlflow-common/client.js';
import { MlflowStore } from '../mlflow-common/write.js';
import { decodingSource } from '../encoding/decode.js';

async function open(target: ConnectorTarget): Promise<MlflowStore> {
  const api = new MlflowApi(target);
  try {
    await api.checkReachable();
  } catch (err) {
    await api.close();
    throw err;
  }
  return new MlflowStore(api);
}

export const mlflowConnector: ConnectorFactory = {
  name: 'mlflow',
  description: 'an MLflow tracking server, http(s)://host:port',
  detect: async (location) => /^https?:\/\//i.test(location),
  openSource: async (target) => decodingSource(await open(target)),
  openDestination: open,
};

export { MlflowStore };
