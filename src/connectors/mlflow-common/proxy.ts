/** Paths under the MLflow server's artifact proxy (`mlflow server --serve-artifacts`). */

/**
 * The path under /api/2.0/mlflow-artifacts/artifacts/ of an `mlflow-artifacts:/…` URI
 * (`mlflow-artifacts:/1/abc/artifacts`, or with a host: `mlflow-artifacts://h:5000/1/abc/artifacts`);
 * '' when the server does not proxy this run's artifacts.
 */
export function proxyPath(artifactUri: string | undefined): string {
  const match = /^mlflow-artifacts:(?:\/\/[^/]*)?\/*(.*)$/.exec(artifactUri ?? '');
  return match ? match[1]!.replace(/\/+$/, '') : '';
}
