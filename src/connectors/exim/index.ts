/**
 * Directories written by the Python mlflow-export-import tools and their fork mlflow-migration
 * (`exim:PATH` forces it): read, and written in mlflow-migration's bulk layout. Detected by
 * their files (experiment.json, run.json, model.json, manifest.json …) when the folder is not a
 * trackshift bundle.
 *
 * MLflow 3 logged models: mlflow/mlflow-export-import writes them since October 2025 (GitHub
 * master, no PyPI release yet: logged_models/<id>/logged_model.json + artifacts/, ./format.ts);
 * mlflow-migration 1.2.2 writes none and imports a version registered from one only as a
 * version of its run's files. Both are read; the writer writes the former and, for the latter,
 * links each such version's model files into its run (./write.ts).
 */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { ConnectorFactory } from '../types.js';
import { EximSource, looksLikeExim } from './read.js';
import { EximDestination } from './write.js';
import { decodingSource } from '../encoding/decode.js';

export const eximConnector: ConnectorFactory = {
  name: 'exim',
  description: 'a directory of mlflow-export-import / mlflow-migration files (read and write)',
  importable: true,
  detect: (location) => looksLikeExim(location),
  openSource: async (target) => decodingSource(new EximSource(target.location)),
  openDestination: async (target) => {
    const root = resolve(target.location);
    if (!target.dryRun) await mkdir(root, { recursive: true });
    return new EximDestination(root, root);
  },
};
