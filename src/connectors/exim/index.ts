/**
 * Directories written by the Python mlflow-export-import tools and their fork mlflow-migration
 * (`exim:PATH` forces it): read. Detected by their files (experiment.json, run.json,
 * model.json, manifest.json …) when the folder is not a trackshift bundle.
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ConnectorFactory } from '../types.js';
import { EximSource, looksLikeExim } from './read.js';
import { EximDestination } from './write.js';

export const eximConnector: ConnectorFactory = {
  name: 'exim',
  description: 'a directory of mlflow-export-import / mlflow-migration files (read and write)',
  detect: (location) => looksLikeExim(location),
  openSource: async (target) => new EximSource(target.location),
  openDestination: async (target) => {
    const root = resolve(target.location);
    if (!target.dryRun) await mkdir(root, { recursive: true });
    return new EximDestination(root, root);
  },
};
