import type { ConnectorFactory } from '../types.js';
export const mlrunsConnector: ConnectorFactory = { name: 'mlruns', description: 'an MLflow file store (mlruns folder)', detect: async () => false };
