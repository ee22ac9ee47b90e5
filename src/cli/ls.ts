import { Command } from 'commander';
import { openSource } from '../connectors/resolve.js';
import type { Run } from '../model/index.js';
import { jobRetries } from '../util/retry.js';
import { SOURCE_FORMS } from './locations.js';
import { addRetryOptions, retryPolicyFrom, type RetryFlags } from './options.js';

interface ModelListing {
  name: string;
  versions: Array<{ version: string; stage: string; aliases: string[] }>;
}

interface RunListing {
  id: string;
  name?: string;
  status: string;
  lifecycle: string;
  startTime?: string;
  tags: Record<string, string>;
}

interface ExperimentListing {
  id: string;
  name: string;
  lifecycle: string;
  runs: number;
  deletedRuns: number;
  /** with --runs */
  runList?: RunListing[];
}

const runListing = (run: Run): RunListing => ({
  id: run.id,
  ...(run.name !== undefined ? { name: run.name } : {}),
  status: run.status,
  lifecycle: run.lifecycle,
  ...(run.startTime !== undefined ? { startTime: new Date(run.startTime).toISOString() } : {}),
  tags: run.tags,
});

/** `best, team=vision`, sorted (a source's tag order may be a set's): a tag without a value (Neptune's labels) is its key alone */
const tagList = (tags: Record<string, string>): string =>
  Object.entries(tags)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => (value === '' ? key : `${key}=${value}`))
    .join(', ');

export function lsCommand(done: (code: number) => void): Command {
  const command = new Command('ls');
  addRetryOptions(command);
  return command
    .description('list what a source holds: experiments with their run counts, and registered models with their versions')
    .argument('<src>', SOURCE_FORMS)
    .option('--include-deleted', 'also list deleted experiments', false)
    .option('--runs', 'also list each experiment\'s runs: id, name, status, start time and tags', false)
    .option('--json', 'print JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  $ trackshift ls http://127.0.0.1:5001
  $ trackshift ls ./mlruns --include-deleted --json
  $ trackshift ls sqlite:///mlflow.db
  $ trackshift ls ./.neptune --runs`,
    )
    .action(async (src: string, flags: { includeDeleted: boolean; runs: boolean; json: boolean } & RetryFlags) => {
      const source = await openSource(src, process.env, 'src', jobRetries(retryPolicyFrom(flags)));
      const listing: ExperimentListing[] = [];
      const models: ModelListing[] = [];
      try {
        for await (const experiment of source.listExperiments()) {
          if (experiment.lifecycle === 'deleted' && !flags.includeDeleted) continue;
          let runs = 0;
          let deletedRuns = 0;
          const runList: RunListing[] = [];
          for await (const run of source.listRuns(experiment.id, { includeDeleted: true })) {
            if (run.lifecycle === 'deleted') deletedRuns++;
            else runs++;
            if (flags.runs && (run.lifecycle !== 'deleted' || flags.includeDeleted)) runList.push(runListing(run));
          }
          listing.push({ id: experiment.id, name: experiment.name, lifecycle: experiment.lifecycle, runs, deletedRuns, ...(flags.runs ? { runList } : {}) });
        }
        for await (const model of source.registry?.listModels() ?? []) {
          const aliasesOf = (version: string) => Object.entries(model.aliases).filter(([, v]) => v === version).map(([alias]) => alias);
          const versions: ModelListing['versions'] = [];
          for await (const v of source.registry!.listVersions(model.name)) versions.push({ version: v.version, stage: v.stage, aliases: aliasesOf(v.version) });
          models.push({ name: model.name, versions });
        }
      } finally {
        await source.close?.();
      }
      // what a file source could not read was left out of the listing: say so, never hide it
      const unreadable = source.unreadable ?? [];
      if (flags.json) {
        process.stdout.write(JSON.stringify({ source: source.uri, experiments: listing, models, unreadable }, null, 2) + '\n');
      } else {
        process.stdout.write(`${source.uri} (${source.kind})\n`);
        const idWidth = Math.max(2, ...listing.map((e) => e.id.length));
        process.stdout.write(`${'ID'.padEnd(idWidth)}  ${'RUNS'.padStart(6)}  ${'DELETED'.padStart(7)}  NAME\n`);
        for (const e of listing) {
          const name = e.lifecycle === 'deleted' ? `${e.name} (deleted)` : e.name;
          process.stdout.write(`${e.id.padEnd(idWidth)}  ${String(e.runs).padStart(6)}  ${String(e.deletedRuns).padStart(7)}  ${name}\n`);
          for (const r of e.runList ?? []) {
            const facts = [r.status, r.lifecycle === 'deleted' ? 'deleted' : '', r.startTime ? `started ${r.startTime}` : '', Object.keys(r.tags).length > 0 ? `tags: ${tagList(r.tags)}` : ''];
            process.stdout.write(`    run ${r.id}  ${r.name ?? '(no name)'}  ${facts.filter(Boolean).join('  ')}\n`);
          }
        }
        if (models.length > 0) process.stdout.write(`\nMODEL  VERSIONS (number stage @aliases)\n`);
        for (const m of models) {
          const versions = m.versions.map((v) => `${v.version}${v.stage !== 'None' ? ` ${v.stage}` : ''}${v.aliases.map((a) => ` @${a}`).join('')}`);
          process.stdout.write(`${m.name}  ${versions.join(', ') || '(none)'}\n`);
        }
        if (unreadable.length > 0) process.stdout.write(`\nUNREADABLE (not counted above)\n`);
        for (const u of unreadable) process.stdout.write(`${u.type} ${u.sourceId}: ${u.reason}\n`);
      }
      done(unreadable.length > 0 ? 1 : 0);
    });
}
