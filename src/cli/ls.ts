import { Command } from 'commander';
import { openSource } from '../connectors/registry.js';

interface ExperimentListing {
  id: string;
  name: string;
  lifecycle: string;
  runs: number;
  deletedRuns: number;
}

export function lsCommand(done: (code: number) => void): Command {
  return new Command('ls')
    .description('list what a source holds: experiments with their run counts')
    .argument('<src>', 'an MLflow server URL, an mlruns folder, a bundle, or FORMAT:PATH')
    .option('--include-deleted', 'also list deleted experiments', false)
    .option('--json', 'print JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  $ trackshift ls http://127.0.0.1:5001
  $ trackshift ls ./mlruns --include-deleted --json`,
    )
    .action(async (src: string, flags: { includeDeleted: boolean; json: boolean }) => {
      const source = await openSource(src);
      const listing: ExperimentListing[] = [];
      try {
        for await (const experiment of source.listExperiments()) {
          if (experiment.lifecycle === 'deleted' && !flags.includeDeleted) continue;
          let runs = 0;
          let deletedRuns = 0;
          for await (const run of source.listRuns(experiment.id, { includeDeleted: true })) {
            if (run.lifecycle === 'deleted') deletedRuns++;
            else runs++;
          }
          listing.push({ id: experiment.id, name: experiment.name, lifecycle: experiment.lifecycle, runs, deletedRuns });
        }
      } finally {
        await source.close?.();
      }
      if (flags.json) {
        process.stdout.write(JSON.stringify({ source: source.uri, experiments: listing }, null, 2) + '\n');
      } else {
        process.stdout.write(`${source.uri} (${source.kind})\n`);
        const idWidth = Math.max(2, ...listing.map((e) => e.id.length));
        process.stdout.write(`${'ID'.padEnd(idWidth)}  ${'RUNS'.padStart(6)}  ${'DELETED'.padStart(7)}  NAME\n`);
        for (const e of listing) {
          const name = e.lifecycle === 'deleted' ? `${e.name} (deleted)` : e.name;
          process.stdout.write(`${e.id.padEnd(idWidth)}  ${String(e.runs).padStart(6)}  ${String(e.deletedRuns).padStart(7)}  ${name}\n`);
        }
      }
      done(0);
    });
}
