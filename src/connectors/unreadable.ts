/**
 * How file sources keep one bad file from stopping everything (Source.unreadable): an object
 * whose files cannot be read is recorded once and left out; the engine reports it as failed.
 */
import { InvalidInputError } from '../util/errors.js';
import type { UnreadableObject } from './types.js';

/**
 * `read()`, or undefined when it finds the object's files malformed (an InvalidInputError, which
 * names the file): then the object is recorded in `into`. Any other error is thrown.
 */
export async function readOrRecord<T>(into: UnreadableObject[], what: Omit<UnreadableObject, 'reason'>, read: () => Promise<T>): Promise<T | undefined> {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof InvalidInputError)) throw err;
    if (!into.some((u) => u.type === what.type && u.sourceId === what.sourceId)) into.push({ ...what, reason: err.message });
    return undefined;
  }
}
