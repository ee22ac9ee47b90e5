/**
 * `copy X X`: an experiment copied onto itself would get every run again on every re-run (its
 * copies are runs of the source too, with new ids). Copying into another experiment of the same
 * system is fine; onto itself is refused before anything is written.
 */
import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Destination, Source } from '../connectors/types.js';
import { UsageError } from '../util/errors.js';
import type { Plan } from './plan.js';

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]']);

/** One spelling per place: a URL without credentials, default port or trailing slash; a real path. */
export function normalizeLocation(uri: string): string {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(uri)) {
    try {
      const url = new URL(uri);
      const host = LOOPBACK.has(url.hostname) ? 'loopback' : url.hostname;
      return `${url.protocol}//${host}${url.port ? `:${url.port}` : ''}${url.pathname.replace(/\/+$/, '')}`;
    } catch {
      return uri;
    }
  }
  const path = resolve(uri);
  return existsSync(path) ? realpathSync(path) : path;
}

type End = Pick<Source & Destination, 'kind' | 'uri' | 'trackingStore'>;
const trackingStore = (end: End) => end.trackingStore ?? end.kind;

export function sameSystem(source: End, destination: End): boolean {
  return trackingStore(source) === trackingStore(destination) && normalizeLocation(source.uri) === normalizeLocation(destination.uri);
}

/**
 * Throws when the plan writes an experiment into itself (or a registered model into itself:
 * its versions would be copied again as new versions). copy-model-version may add a version
 * to its own model: it copies one version, found again by its provenance tags on a re-run.
 */
export function refuseSelfCopy(source: Source, destination: Destination, plan: Plan, command: string): void {
  if (!sameSystem(source, destination)) return;
  const where = `${source.uri} is both the source and the destination`;
  const experiments = plan.experiments.filter((e) => e.destinationName === e.experiment.name);
  if (experiments.length > 0) {
    const names = experiments.slice(0, 5).map((e) => `"${e.experiment.name}"`).join(', ') + (experiments.length > 5 ? ` and ${experiments.length - 5} more` : '');
    const what = plan.experiments.length === experiments.length && experiments.length > 1 ? 'every selected experiment' : `experiment ${names}`;
    throw new UsageError(
      `${command}: ${where}, so ${what} would be copied onto itself (and again on every re-run). ` +
        'To copy within one server, select one experiment and give it another name: --experiment NAME --dst-experiment NEW_NAME. Nothing was written.',
    );
  }
  if (command === 'copy-model-version') return;
  const models = plan.models.filter((m) => m.destinationName === m.model.name);
  if (models.length > 0) {
    throw new UsageError(
      `${command}: ${where}, so registered model "${models[0]!.model.name}" would be copied onto itself. ` +
        'Select one model with --model NAME --dst-model NEW_NAME, or use copy-model-version. Nothing was written.',
    );
  }
}
