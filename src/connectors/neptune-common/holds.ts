/** What a Neptune 2.x run holds, written offline or through the API alike. */
import type { DestinationHolds } from '../types.js';

export const NEPTUNE2_HOLDS: DestinationHolds = {
  seriesTypes: ['float', 'string', 'file'],
  fractionalSteps: true,
  pointsWithoutTimestamp: false,
  epochs: false,
  contexts: false,
  systemSeries: { prefix: 'monitoring/' },
  typedConfig: true,
  summaries: false,
  forks: false,
  groups: true,
  sourceStates: false,
  creationTimes: { experiments: false, models: false, versions: false },
};
