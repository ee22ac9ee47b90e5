/**
 * The Neptune 2.x client's (`neptune` 1.x) local folders: `.neptune/offline` and `.neptune/async`,
 * read by replaying their operation logs (read.ts), and written as the client writes offline
 * runs (write.ts), for `neptune sync` to upload into a Neptune 2.x project.
 *
 * Detection: a `.neptune` folder holding 2.x runs, the folder above it, or one run folder
 * (`run__<uuid>…`). Forced with `neptune2:PATH`; as a destination PATH is the client's data
 * directory (its NEPTUNE_DATA_DIRECTORY, `.neptune` by default), created when missing. Runs it
 * reads go through the `.trackshift/` decoding, as the engine encodes what 2.x cannot hold.
 */
import { UsageError } from '../../util/errors.js';
import { decodingSource } from '../encoding/decode.js';
import type { ConnectorFactory } from '../types.js';
import { dataRoot, singleContainer } from './folders.js';

export const neptune2Connector: ConnectorFactory = {
  name: 'neptune2',
  description: "the Neptune 2.x client's .neptune folder (offline and async runs), or one run__… folder in it; written as offline runs for neptune sync",
  /** a `.neptune` folder may hold neptune-scale (3.x) runs too, which another connector reads */
  sharesFolders: true,
  detect: async (location) => ((await dataRoot(location)) ?? (await singleContainer(location))) !== undefined,
  openSource: async (target) => {
    const { Neptune2Source } = await import('./read.js');
    const root = await dataRoot(target.location);
    if (root) return decodingSource(new Neptune2Source(root));
    const single = await singleContainer(target.location);
    if (single) return decodingSource(new Neptune2Source(target.location, single));
    throw new UsageError(`${target.location} holds no Neptune 2.x run: expected a .neptune folder (with offline/ or async/ run folders holding data-<N>.log files), the folder above it, or one run__… folder`);
  },
  openDestination: async (target) => {
    if (await singleContainer(target.location)) throw new UsageError(`${target.location} is one run's folder: give the data directory that holds offline/ (NEPTUNE_DATA_DIRECTORY, .neptune by default), e.g. neptune2:.neptune`);
    const { Neptune2Destination } = await import('./write.js');
    return Neptune2Destination.open(target.location, target.dryRun);
  },
};
