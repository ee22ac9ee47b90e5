/**
 * How file sources keep one bad file from stopping everything (Source.unreadable): an object
 * whose files cannot be read is recorded once and left out; the engine reports it as failed.
 */
import { basename, dirname } from 'node:path';
import { InvalidInputError } from '../util/errors.js';
import type { UnreadableObject } from './types.js';

/**
 * `read()` of the object described by `file`, or undefined when it finds the object's files
 * malformed (an InvalidInputError, which names the file): then the object is recorded in `into`,
 * as `sourceId` or, by default, the name of the file's folder (a run's or an experiment's folder
 * is its id in well-formed input). Any other error is thrown.
 */
export async function readOrRecord<T>(
  into: UnreadableObject[],
  what: { type: UnreadableObject['type']; file: string; sourceId?: string },
  read: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    const sourceId = what.sourceId ?? basename(dirname(what.file));
    if (!into.some((u) => u.type === what.type && u.reason === err.message)) into.push({ type: what.type, sourceId, reason: err.message });
    return undefined;
  }
}
