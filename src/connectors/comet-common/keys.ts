/** Comet experiment keys, as the server accepts them and as trackshift derives them from other ids. */
import { createHash } from 'node:crypto';

/** A Comet experiment key: what the server accepts (alphanumeric, 32 to 50 characters). */
export const EXPERIMENT_KEY = /^[A-Za-z0-9]{32,50}$/;

/** The key for a source run: its id when Comet takes it as a key, else sha1 of it (as the SDK's get_experiment_key derives keys). */
export const keyFor = (runId: string): string => (EXPERIMENT_KEY.test(runId) ? runId : createHash('sha1').update(runId, 'utf8').digest('hex'));
