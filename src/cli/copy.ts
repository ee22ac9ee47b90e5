import type { Command } from 'commander';
import { parseCount } from './options.js';
import { DESTINATION_FORMS, SOURCE_FORMS } from './locations.js';
import { transferCommand } from './run-job.js';

export const copyCommand = (done: (code: number) => void): Command =>
  transferCommand(
    {
      name: 'copy',
      description: 'copy experiments, runs and registered models (with their versions) from SRC to DST directly, streaming; safe to re-run',
      from: ['<src>', `where to read: ${SOURCE_FORMS}`],
      to: ['<dst>', `where to write: ${DESTINATION_FORMS}. Within one server, copy into another experiment (--dst-experiment): an experiment onto itself is refused`],
      examples: [
        'trackshift copy http://127.0.0.1:5001 http://127.0.0.1:5002',
        'trackshift copy ./mlruns http://127.0.0.1:5002 --experiment churn --dst-experiment churn-2024',
        'trackshift copy http://127.0.0.1:5001 mlruns:./new-mlruns',
        'trackshift copy sqlite:///mlflow.db http://127.0.0.1:5002',
        "trackshift copy http://127.0.0.1:5001 'neptune3:./neptune-logs?project=my-team/my-project'",
        'trackshift copy http://127.0.0.1:5001 http://127.0.0.1:5001 --experiment churn --dst-experiment churn-copy',
        'trackshift copy http://old:5000 http://new:5000 --status FINISHED --start-after 2024-01-01 --workers 8',
        'TRACKSHIFT_SRC_MLFLOW_TRACKING_TOKEN=… TRACKSHIFT_DST_MLFLOW_TRACKING_TOKEN=… trackshift copy https://a https://b',
        'TRACKSHIFT_SRC_COMET_API_KEY=… TRACKSHIFT_DST_COMET_API_KEY=… TRACKSHIFT_DST_COMET_URL_OVERRIDE=https://comet.new.example/clientlib/ trackshift copy comet://old-ws/proj comet://new-ws/proj',
        'trackshift copy http://old:5000 http://new:5000 --experiment churn --verify',
      ],
      options: (command) =>
        command
          .option('--verify', 'afterwards, compare what was selected on both ends field by field (as `trackshift verify` does); exit 1 if anything differs, 3 if the comparison could not be finished', false)
          .option('--max-differences <n>', 'with --verify: differences listed per object; the rest are counted', parseCount('--max-differences', 1_000_000), 20),
    },
    done,
  );
