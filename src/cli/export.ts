import type { Command } from 'commander';
import { bundleConnector } from '../connectors/registry.js';
import { UsageError } from '../util/errors.js';
import { transferCommand } from './run-job.js';

export const exportCommand = (done: (code: number) => void): Command =>
  transferCommand(
    {
      name: 'export',
      description: 'copy experiments and runs from SRC into a trackshift bundle folder (to carry across an air gap, or keep)',
      from: ['<src>', 'where to read: an MLflow server URL, an mlruns folder, a bundle, or FORMAT:PATH'],
      to: ['<dir>', 'the bundle folder: created when missing; an existing bundle is resumed'],
      examples: [
        'trackshift export http://127.0.0.1:5001 ./out',
        'trackshift export ./mlruns ./out --experiment 0 --include-deleted',
        'trackshift export http://127.0.0.1:5001 ./out --run-id 4f1c…,9a2b… --include-nested',
      ],
      extra: (_src, dir) => ({
        newFolderFormat: bundleConnector,
        checkEnds: (_source, destination) => {
          if (destination.kind !== 'bundle') throw new UsageError(`export writes a trackshift bundle, but ${dir} is ${destination.kind}; use copy to write there`);
        },
      }),
    },
    done,
  );
