/** trackshift as a library: the neutral model, the connector contract, and the engine. */
export * from './model/index.js';
export type * from './connectors/types.js';
export { CONNECTORS, openDestination, openSource } from './connectors/resolve.js';
export { MemoryStore, memoryStore } from './connectors/memory/index.js';
export { planTransfer, emptySelection, type Selection, type Plan } from './engine/plan.js';
export { transfer, type TransferOptions, type TransferResult } from './engine/transfer.js';
export { Journal, type IdMap } from './engine/journal.js';
export { runJob, type JobOptions, type Report } from './engine/job.js';
export type { TransferEvent } from './engine/events.js';
export { TrackshiftError, UsageError, InvalidInputError } from './util/errors.js';
