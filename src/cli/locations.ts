/**
 * How the verbs' help names the systems they read and write, in one place so that every verb
 * says the same (src/connectors/resolve.ts decides; each connector's index.ts says which side).
 */

/** every kind that can be read */
export const SOURCE_FORMS =
  'an MLflow server URL (http(s)://host:port), a Databricks workspace (databricks://PROFILE, databricks-uc://PROFILE), ' +
  'an MLflow database (sqlite:///mlflow.db, postgresql://…, mysql://…), an mlruns folder, a trackshift bundle, ' +
  'an mlflow-export-import directory, a .neptune folder of either Neptune client, a neptune-exporter export, ' +
  'Comet offline archives (<key>.zip, or a folder of them), cometx download folders (ROOT, ROOT/WS, ROOT/WS/PROJ or one ' +
  'experiment folder, also --from wandb), a Comet instance (comet://WORKSPACE or comet://WORKSPACE/PROJECT), a Neptune 2.x project on its server ' +
  '(neptune://WORKSPACE/PROJECT, NEPTUNE_API_TOKEN), a Neptune 3.x project on its server (neptune-scale://WORKSPACE/PROJECT, ' +
  'NEPTUNE_API_TOKEN), or FORMAT:PATH';

/** every kind that can be written */
export const DESTINATION_FORMS =
  'an MLflow server URL (http(s)://host:port), a Databricks workspace (databricks://PROFILE, databricks-uc://PROFILE), ' +
  'an mlruns folder (mlruns:NEW_FOLDER makes a new one), a trackshift bundle (bundle:NEW_FOLDER makes a new one), ' +
  'an mlflow-export-import directory (exim:DIR), Neptune offline runs for `neptune sync` (neptune2:DIR, the 2.x ' +
  'client\'s .neptune folder; neptune3:DIR?project=WORKSPACE/PROJECT, a 3.x log directory), Comet offline archives ' +
  '(comet-offline:DIR?workspace=WS&project=PROJ), cometx download folders for `cometx copy` ' +
  '(cometx:DIR?workspace=WS&project=PROJ, written as DIR/WS/PROJ/KEY), a Comet instance (comet://WORKSPACE[/PROJECT]), ' +
  'a Neptune 2.x project on its server (neptune://WORKSPACE/PROJECT, NEPTUNE_API_TOKEN), a Neptune 3.x project on its ' +
  'server (neptune-scale://WORKSPACE/PROJECT, NEPTUNE_API_TOKEN; created when missing), ' +
  'or an MLflow database written directly (sqlite:///mlflow.db, postgresql://user:pw@host/db, mysql://user:pw@host/db, ' +
  'each with [?artifacts=DIR], its tables made first by `mlflow db upgrade`)';
