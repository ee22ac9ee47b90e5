/** What a Neptune run holds, written offline or through the API alike. */
import { SERIES_TYPES } from '../../model/index.js';
import type { DestinationHolds } from '../types.js';

/** What a Neptune 2.x run holds. */
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

/** parameters.py: steps in [0, 10^12) */
const MAX_STEP_3X = 1_000_000_000_000;

/** What a Neptune 3.x run holds, in an offline database or through the ingest API alike. */
export const NEPTUNE3_HOLDS: DestinationHolds = {
  seriesTypes: SERIES_TYPES,
  fractionalSteps: true,
  // the client stamps every snapshot; a point without a time gets the run's start (engine)
  pointsWithoutTimestamp: false,
  epochs: false,
  contexts: false,
  // Neptune's system namespaces (`runtime/`, and 2.x's `monitoring/` moved there) say it
  systemSeries: true,
  typedConfig: true,
  // attribute paths are `/`-joined: a config key holding `/` cannot be told from a namespace
  configPathSeparator: '/',
  summaries: false,
  forks: true,
  groups: true,
  // kept in run_info/source_state for runs from elsewhere (target.ts); a Neptune run's state is the client's own (seed 001)
  sourceStates: true,
  creationTimes: { experiments: false, models: false, versions: false },
  // what the server refuses (non-finite values, steps outside [0, 10^12) or finer than micro-steps,
  // steps not increasing, timestamps going back) is kept in the `.trackshift/` encoding by the engine
  pointRules: { finiteValues: true, increasingSteps: true, nonDecreasingTimestamps: true, minStep: 0, maxStep: MAX_STEP_3X, stepDecimals: 6 },
};
