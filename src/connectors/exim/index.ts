/**
 * Directories written by the Python mlflow-export-import tools and their fork mlflow-migration
 * (`exim:PATH` forces it): read. Detected by their files (experiment.json, run.json,
 * model.json, manifest.json …) when the folder is not a trackshift bundle.
 */
import type { ConnectorFactory } from '../types.js';
import { EximSource, looksLikeExim } from './read.js';

export const eximConnector: ConnectorFactory = {
  name: 'exim',
  description: 'a directory written by mlflow-export-import / mlflow-migration (read)',
  detect: (location) => looksLikeExim(location),
  openSource: async (target) => new EximSource(target.location),
};
