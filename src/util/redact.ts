/** Keeps secrets out of everything trackshift prints, logs or writes in a report. */

// signed storage URLs: Azure SAS `sig`, AWS `X-Amz-Signature` / `-Credential` / `-Security-Token`,
// GCS `X-Goog-Signature` / `-Credential` (and GCS V2 `Signature`)
const SECRET_QUERY_KEYS = /^(token|access_token|api[-_]?key|password|secret|sig|signature|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential)$/i;

/** A URI without user name, password, or secret-looking query parameters. */
export function redactUri(uri: string): string {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return uri;
  }
  if (!/^https?:$/.test(url.protocol)) return uri;
  url.username = '';
  url.password = '';
  for (const key of [...url.searchParams.keys()]) if (SECRET_QUERY_KEYS.test(key)) url.searchParams.set(key, '***');
  const text = url.toString();
  // new URL('http://h:1') prints 'http://h:1/': keep what the user typed when there was no path
  return uri.endsWith('/') || url.pathname !== '/' ? text : text.replace(/\/$/, '');
}

/** Replaces every occurrence of the given secret values with ***. */
export function redact(text: string, secrets: Array<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('***');
  }
  return out;
}
