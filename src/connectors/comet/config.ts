/**
 * Where a Comet instance is and which API key signs in, resolved as comet_ml 3.58 does
 * (config/config_class.py, config/config_api.py, api_key/comet_api_key.py):
 *
 *   api_key, url_override   the first of: the environment (COMET_API_KEY, COMET_URL_OVERRIDE),
 *                           ./.env, the file COMET_CONFIG names (or COMET_CONFIG/.comet.config
 *                           when it is a folder), ./.comet.config, ~/.comet.config — ini files
 *                           with a `[comet]` section of `api_key = …`, `url_override = …`.
 *
 * Each side of a copy can have its own: TRACKSHIFT_SRC_COMET_API_KEY, TRACKSHIFT_DST_COMET_URL_OVERRIDE,
 * TRACKSHIFT_SRC_COMET_CONFIG … win over the plain names. A "smart" key `KEY*BASE64` carries its
 * server (`{"baseUrl": …}`): it sets url_override when none is configured, and the whole key is
 * sent, as comet_ml sends it. Without either, the server is Comet's cloud (www.comet.com).
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../../util/errors.js';
import type { ConnectorTarget } from '../types.js';

export const DEFAULT_URL_OVERRIDE = 'https://www.comet.com/clientlib/';
const URL_OVERRIDE_PATH = '/clientlib/';

export interface CometConfig {
  /** as sent in the Authorization header; never printed */
  apiKey: string;
  /** the server's root, `scheme://host[:port]` (REST v2 is under /api/rest/v2/) */
  root: string;
  /** url_override as comet_ml sanitises it, ending in `/`: the client library's endpoints */
  clientlib: string;
  /** where the key came from, for messages (a variable or file name, never the key) */
  keyOrigin: string;
  /** what to set when the key is missing or refused */
  keyHint: string;
}

type Name = 'COMET_API_KEY' | 'COMET_URL_OVERRIDE' | 'COMET_CONFIG';

/** TRACKSHIFT_<SIDE>_<NAME>, else <NAME>, with the name it was found under. */
function setting(target: ConnectorTarget, name: Name): { value: string; from: string } | undefined {
  const sided = `TRACKSHIFT_${target.side.toUpperCase()}_${name}`;
  const specific = target.env[sided];
  if (specific) return { value: specific, from: sided };
  const plain = target.env[name];
  return plain ? { value: plain, from: name } : undefined;
}

/** An ini file as Python's configparser reads it: the `[comet]` section's keys (lower-cased). */
export function parseIni(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let inComet = false;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      inComet = section[1]!.trim().toLowerCase() === 'comet';
      continue;
    }
    if (!inComet) continue;
    const at = [line.indexOf('='), line.indexOf(':')].filter((i) => i > 0);
    if (at.length === 0) continue;
    const eq = Math.min(...at);
    out[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  return out;
}

/** A `.env` file: `NAME=value` lines (quotes and `export ` taken off). */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const match = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(raw);
    if (!match || raw.trim().startsWith('#')) continue;
    out[match[1]!] = match[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return out;
}

const readText = (file: string): string | undefined => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
};

const isDirectory = (path: string): boolean => {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
};

/** The config files in comet_ml's order, after the environment. */
function configFiles(target: ConnectorTarget): Array<{ file: string; values: Record<string, string> }> {
  const files: Array<{ file: string; values: Record<string, string> }> = [];
  const cwd = process.cwd();
  const dotEnv = readText(join(cwd, '.env'));
  if (dotEnv !== undefined) {
    const env = parseDotEnv(dotEnv);
    const values: Record<string, string> = {};
    if (env.COMET_API_KEY) values.api_key = env.COMET_API_KEY;
    if (env.COMET_URL_OVERRIDE) values.url_override = env.COMET_URL_OVERRIDE;
    files.push({ file: join(cwd, '.env'), values });
  }
  const named = setting(target, 'COMET_CONFIG');
  const paths: string[] = [];
  if (named) paths.push(isDirectory(named.value) ? join(named.value, '.comet.config') : resolve(named.value));
  paths.push(join(cwd, '.comet.config'), join(target.env.HOME || homedir(), '.comet.config'));
  for (const file of paths) {
    const text = readText(file);
    if (text !== undefined) files.push({ file, values: parseIni(text) });
  }
  return files;
}

/** comet_ml's base64 decoding of a smart key's attributes: padding fixed, strict alphabet. */
function decodeAttributes(part: string): Record<string, unknown> {
  let data = part;
  if (data.length % 4 !== 0 && data.endsWith('=')) data = data.replace(/=/g, '');
  if (data.length % 4 !== 0) data += '='.repeat(4 - (data.length % 4));
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw new Error('not base64');
  const parsed: unknown = JSON.parse(Buffer.from(data, 'base64').toString('utf8'));
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not a JSON object');
  return parsed as Record<string, unknown>;
}

/** A smart key's server (`baseUrl`), or undefined for a plain key; throws a UsageError for a malformed one. */
export function smartKeyBaseUrl(apiKey: string, origin: string): string | undefined {
  const parts = apiKey.split('*');
  if (parts.length === 1 || parts[1] === '') return undefined;
  if (parts.length > 2) throw new UsageError(`the Comet API key from ${origin} has ${parts.length} parts separated by "*"; a key is KEY or KEY*BASE64 (as Comet gives it)`);
  let attributes: Record<string, unknown>;
  try {
    attributes = decodeAttributes(parts[1]!);
  } catch (err) {
    throw new UsageError(`the Comet API key from ${origin} ends in "*…" that is not base64 JSON (${(err as Error).message}); copy the key again from Comet's account settings`);
  }
  return typeof attributes.baseUrl === 'string' && attributes.baseUrl ? attributes.baseUrl : undefined;
}

/** url_override as comet_ml's sanitize_url leaves it: with a path ending in `/`. */
export function sanitizeUrl(url: string): string {
  const parsed = new URL(url);
  if (!parsed.pathname.endsWith('/')) parsed.pathname += '/';
  return parsed.toString();
}

export function resolveConfig(target: ConnectorTarget): CometConfig {
  const side = target.side.toUpperCase();
  const keyHint = `set TRACKSHIFT_${side}_COMET_API_KEY (or COMET_API_KEY), or api_key under [comet] in the file TRACKSHIFT_${side}_COMET_CONFIG names, ./.comet.config or ~/.comet.config`;
  const files = configFiles(target);
  const fromFiles = (key: 'api_key' | 'url_override') => {
    for (const { file, values } of files) if (values[key]) return { value: values[key]!, from: file };
    return undefined;
  };
  const key = setting(target, 'COMET_API_KEY') ?? fromFiles('api_key');
  if (!key) throw new UsageError(`no Comet API key for the ${target.side === 'src' ? 'source' : 'destination'} (${target.location}): ${keyHint}`);
  const override = setting(target, 'COMET_URL_OVERRIDE') ?? fromFiles('url_override');
  const baseUrl = smartKeyBaseUrl(key.value, key.from);
  // comet_ml: a configured url_override wins over the key's baseUrl (it only warns of a mismatch)
  let urlOverride = override?.value || (baseUrl ? new URL(URL_OVERRIDE_PATH, baseUrl.replace(/\/*$/, '/')).toString() : DEFAULT_URL_OVERRIDE);
  if (!/^https?:\/\//i.test(urlOverride)) {
    throw new UsageError(`the Comet URL ${JSON.stringify(urlOverride)} from ${override?.from ?? 'the API key'} is not an http(s) URL; give e.g. https://comet.example.com/clientlib/`);
  }
  let clientlib: string;
  try {
    clientlib = sanitizeUrl(urlOverride);
  } catch {
    throw new UsageError(`the Comet URL from ${override?.from ?? 'the API key'} is not a URL; give e.g. https://comet.example.com/clientlib/`);
  }
  urlOverride = clientlib;
  const root = new URL(urlOverride).origin;
  return { apiKey: key.value, root, clientlib, keyOrigin: key.from, keyHint };
}
