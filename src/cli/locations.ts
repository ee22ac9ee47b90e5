/**
 * How the verbs' help names the systems they read and write, in one place so that every verb
 * says the same (src/connectors/resolve.ts decides; each connector's index.ts says which side).
 */

/** every kind that can be read */
export const SOURCE_FORMS =
  'an MLflow server URL (http(s)://host:port), a Databricks workspace (databricks://PROFILE, databricks-uc://PROFILE), ' +
  'an MLflow database (sqlite:///mlflow.db, postgresql://…, mysql://…), an mlruns folder, a trackshift bundle, ' +
  'an mlflow-export-import directory, or FORMAT:PATH';

/** every kind that can be written (databases are read only) */
export const DESTINATION_FORMS =
  'an MLflow server URL (http(s)://host:port), a Databricks workspace (databricks://PROFILE, databricks-uc://PROFILE), ' +
  'an mlruns folder (mlruns:NEW_FOLDER makes a new one), a trackshift bundle (bundle:NEW_FOLDER makes a new one), ' +
  'an mlflow-export-import directory (exim:DIR), or a Neptune 3.x log directory of offline runs for `neptune sync` ' +
  '(neptune3:DIR?project=WORKSPACE/PROJECT); MLflow databases are read only';
