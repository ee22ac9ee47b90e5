/**
 * Where a Databricks workspace is and how to sign in, as the Databricks tools resolve it:
 *
 *   databricks | databricks-uc                 DATABRICKS_HOST + DATABRICKS_TOKEN, else the DEFAULT profile
 *   databricks://PROFILE | databricks-uc://PROFILE   that profile of ~/.databrickscfg
 *                                              (DATABRICKS_CONFIG_FILE names another file)
 *
 * Each setting can be given for one side of a copy: TRACKSHIFT_SRC_DATABRICKS_HOST,
 * TRACKSHIFT_DST_DATABRICKS_TOKEN, … win over the plain names. Personal access tokens only.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../util/errors.js';
import type { ConnectorTarget } from '../types.js';

export interface DatabricksAddress {
  /** true for `databricks-uc`: the registry is Unity Catalog */
  unityCatalog: boolean;
  /** the profile named in the URI, if any */
  profile?: string;
}

export interface DatabricksConfig {
  host: string;
  token: string;
  /** where it came from, for messages: never the token */
  origin: string;
}

const URI = /^databricks(-uc)?(?::\/\/([^/?#]*))?\/?$/i;

export function parseAddress(location: string): DatabricksAddress | undefined {
  const match = URI.exec(location.trim());
  if (!match) return undefined;
  return { unityCatalog: Boolean(match[1]), ...(match[2] ? { profile: decodeURIComponent(match[2]) } : {}) };
}

/** A `~/.databrickscfg`-style INI file: `[profile]` sections of `key = value` lines. */
export function parseProfiles(text: string): Map<string, Record<string, string>> {
  const profiles = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[(.+)\]$/.exec(line);
    if (section) {
      current = {};
      profiles.set(section[1]!.trim(), current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq > 0 && current) current[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  return profiles;
}

function setting(target: ConnectorTarget, name: string): string | undefined {
  const side = target.env[`TRACKSHIFT_${target.side.toUpperCase()}_${name}`];
  return side || target.env[name] || undefined;
}

export function resolveConfig(target: ConnectorTarget, address: DatabricksAddress): DatabricksConfig {
  const side = target.side.toUpperCase();
  const envHost = setting(target, 'DATABRICKS_HOST');
  const envToken = setting(target, 'DATABRICKS_TOKEN');
  // the environment answers for a URI without a profile, as the Databricks CLI does
  if (!address.profile && envHost && envToken) return { host: normaliseHost(envHost), token: envToken, origin: 'DATABRICKS_HOST/DATABRICKS_TOKEN' };

  const file = setting(target, 'DATABRICKS_CONFIG_FILE') ?? join(target.env.HOME || homedir(), '.databrickscfg');
  const name = address.profile ?? 'DEFAULT';
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(
      `no Databricks credentials for ${address.profile ? `profile "${name}"` : 'databricks'}: ${file} cannot be read, ` +
        `and TRACKSHIFT_${side}_DATABRICKS_HOST / _TOKEN (or DATABRICKS_HOST / DATABRICKS_TOKEN) are not both set`,
    );
  }
  const profiles = parseProfiles(text);
  const profile = profiles.get(name);
  if (!profile) {
    throw new UsageError(`profile "${name}" is not in ${file}; it has ${[...profiles.keys()].map((p) => `"${p}"`).join(', ') || 'no profiles'}`);
  }
  const host = envHost && !address.profile ? envHost : profile.host;
  const token = envToken && !address.profile ? envToken : profile.token;
  if (!host) throw new UsageError(`profile "${name}" in ${file} has no host`);
  if (!token) {
    const kind = profile.auth_type ?? (profile.client_id ? 'OAuth (client_id)' : profile.username ? 'user name and password' : 'an unknown kind');
    throw new UsageError(
      `profile "${name}" in ${file} has no token (it signs in with ${kind}); trackshift signs in to Databricks with a personal access token: add token = … to the profile, or set TRACKSHIFT_${side}_DATABRICKS_TOKEN`,
    );
  }
  return { host: normaliseHost(host), token, origin: `profile "${name}" in ${file}` };
}

function normaliseHost(host: string): string {
  const withScheme = /^https?:\/\//i.test(host) ? host : `https://${host}`;
  return withScheme.replace(/\/+$/, '');
}
