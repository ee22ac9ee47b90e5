/**
 * The Neptune 2.x client's (`neptune` 1.x) local folders: `.neptune/offline` and `.neptune/async`,
 * read by replaying their operation logs. Read only (a source).
 *
 * Detection: a `.neptune` folder holding 2.x runs, the folder above it, or one run folder
 * (`run__<uuid>…`). Forced with `neptune2:PATH`.
 */
import { UsageError } from '../../util/errors.js';
import type { ConnectorFactory } from '../types.js';
import { dataRoot, singleContainer } from './folders.js';
import { Neptune2Source } from './read.js';

export { Neptune2Source } from './read.js';

export const neptune2Connector: ConnectorFactory = {
  name: 'neptune2',
  description: 'the Neptune 2.x client\'s .neptune folder (offline and async runs), or one run__… folder in it (read only)',
  /** a `.neptune` folder may hold neptune-scale (3.x) runs too, which another connector reads */
  sharesFolders: true,
  detect: async (location) => ((await dataRoot(location)) ?? (await singleContainer(location))) !== undefined,
  openSource: async (target) => {
    const root = await dataRoot(target.location);
    if (root) return new Neptune2Source(root);
    const single = await singleContainer(target.location);
    if (single) return new Neptune2Source(target.location, single);
    throw new UsageError(`${target.location} holds no Neptune 2.x run: expected a .neptune folder (with offline/ or async/ run folders holding data-<N>.log files), the folder above it, or one run__… folder`);
  },
};
