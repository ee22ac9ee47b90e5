/**
 * Where a Databricks workspace is and how to sign in, resolved as the Databricks SDK and CLI do:
 *
 *   databricks | databricks-uc        DATABRICKS_HOST (+ DATABRICKS_TOKEN) when the host is set;
 *                                     else the profile DATABRICKS_CONFIG_PROFILE, the
 *                                     `[__settings__] default_profile`, or DEFAULT
 *   databricks://PROFILE | databricks-uc://PROFILE    that profile of ~/.databrickscfg
 *                                     (DATABRICKS_CONFIG_FILE names another file)
 *
 * Each setting can be given for one side of a copy: TRACKSHIFT_SRC_DATABRICKS_HOST,
 * TRACKSHIFT_DST_DATABRICKS_TOKEN, TRACKSHIFT_SRC_DATABRICKS_CONFIG_FILE … win over the plain
 * names, and over the profile's own values. A profile named in the URI is not mixed with the
 * plain DATABRICKS_HOST / DATABRICKS_TOKEN (they belong to whatever workspace the shell is set
 * up for). Personal access tokens only: other sign-in kinds are refused with a message.
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
const SETTINGS_SECTION = '__settings__';

export function parseAddress(location: string): DatabricksAddress | undefined {
  const match = URI.exec(location.trim());
  if (!match) return undefined;
  return { unityCatalog: Boolean(match[1]), ...(match[2] ? { profile: decodeURIComponent(match[2]) } : {}) };
}

/**
 * A `~/.databrickscfg`-style INI file (what Python's configparser reads): `[profile]` sections of
 * `key = value` or `key: value` lines, keys case-insensitive, `#`/`;` comment lines.
 */
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
    const at = [line.indexOf('='), line.indexOf(':')].filter((i) => i > 0);
    if (at.length === 0 || !current) continue;
    const eq = Math.min(...at);
    current[line.slice(0, eq).trim().toLowerCase()] = line.slice(eq + 1).trim();
  }
  return profiles;
}

/** TRACKSHIFT_<SIDE>_<NAME>, else <NAME> when `plain` */
function setting(target: ConnectorTarget, name: string, plain = true): string | undefined {
  const side = target.env[`TRACKSHIFT_${target.side.toUpperCase()}_${name}`];
  if (side) return side;
  return plain ? target.env[name] || undefined : undefined;
}

/** How a profile without a token signs in, in the words of the Databricks tools. */
function signInKind(profile: Record<string, string>): string {
  if (profile.auth_type) return `auth_type = ${profile.auth_type}`;
  if (profile.client_id || profile.client_secret) return 'OAuth with a service principal (client_id / client_secret)';
  if (profile.azure_client_id || profile.azure_use_msi || profile.azure_tenant_id) return 'Azure (azure_client_id / azure_use_msi)';
  if (profile.google_service_account || profile.google_credentials) return 'Google credentials';
  if (profile.username || profile.password) return 'a user name and password';
  return 'no token at all';
}

export function resolveConfig(target: ConnectorTarget, address: DatabricksAddress): DatabricksConfig {
  const side = target.side.toUpperCase();
  const sideHost = setting(target, 'DATABRICKS_HOST', false);
  const sideToken = setting(target, 'DATABRICKS_TOKEN', false);
  const envHost = setting(target, 'DATABRICKS_HOST');
  const envToken = setting(target, 'DATABRICKS_TOKEN');
  const hint = `set TRACKSHIFT_${side}_DATABRICKS_HOST and TRACKSHIFT_${side}_DATABRICKS_TOKEN (or DATABRICKS_HOST and DATABRICKS_TOKEN)`;

  // a URI without a profile and a host in the environment: the environment alone, as the SDK does
  if (!address.profile && envHost) {
    if (!envToken) throw new UsageError(`the Databricks host for the ${target.side === 'src' ? 'source' : 'destination'} comes from the environment (${sideHost ? `TRACKSHIFT_${side}_DATABRICKS_HOST` : 'DATABRICKS_HOST'}), but no token does: ${hint}`);
    return { host: normaliseHost(envHost), token: envToken, origin: sideHost ? `TRACKSHIFT_${side}_DATABRICKS_HOST/_TOKEN` : 'DATABRICKS_HOST/DATABRICKS_TOKEN' };
  }

  const file = setting(target, 'DATABRICKS_CONFIG_FILE') ?? join(target.env.HOME || homedir(), '.databrickscfg');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(
      address.profile
        ? `no Databricks profile "${address.profile}": ${file} cannot be read (DATABRICKS_CONFIG_FILE names another file)`
        : `no Databricks credentials for ${target.location}: ${file} cannot be read; ${hint}`,
    );
  }
  const profiles = parseProfiles(text);
  const defaultProfile = profiles.get(SETTINGS_SECTION)?.default_profile?.trim();
  const name = address.profile ?? setting(target, 'DATABRICKS_CONFIG_PROFILE') ?? (defaultProfile || 'DEFAULT');
  const profile = name === SETTINGS_SECTION ? undefined : profiles.get(name);
  if (!profile) {
    const known = [...profiles.keys()].filter((p) => p !== SETTINGS_SECTION);
    throw new UsageError(`profile "${name}" is not in ${file}; it has ${known.map((p) => `"${p}"`).join(', ') || 'no profiles'}${address.profile ? '' : `. Name one (databricks://PROFILE), or ${hint}`}`);
  }
  const where = `profile "${name}" in ${file}`;
  // side-specific settings win over the profile; the plain ones only fill in for an unnamed profile
  const host = sideHost ?? profile.host ?? (address.profile ? undefined : envHost);
  const token = sideToken ?? (address.profile ? undefined : envToken) ?? profile.token;
  if (!host) throw new UsageError(`${where} has no host; add host = https://… to it, or set TRACKSHIFT_${side}_DATABRICKS_HOST`);
  const authType = profile.auth_type?.trim().toLowerCase();
  if (!sideToken && authType && authType !== 'pat') {
    throw new UsageError(
      `${where} signs in with auth_type = ${profile.auth_type}, which trackshift does not support: it signs in to Databricks with a personal access token only. ` +
        `Use a profile with token = … (auth_type = pat, or none), or set TRACKSHIFT_${side}_DATABRICKS_TOKEN`,
    );
  }
  if (!token) {
    throw new UsageError(
      `${where} has no token (it signs in with ${signInKind(profile)}), which trackshift does not support: it signs in to Databricks with a personal access token only. ` +
        `Add token = … to the profile, or set TRACKSHIFT_${side}_DATABRICKS_TOKEN`,
    );
  }
  const overridden = [sideHost && 'host', sideToken && 'token'].filter(Boolean);
  return { host: normaliseHost(host), token, origin: overridden.length ? `${where} with ${overridden.join(' and ')} from TRACKSHIFT_${side}_DATABRICKS_*` : where };
}

function normaliseHost(host: string): string {
  const withScheme = /^https?:\/\//i.test(host) ? host : `https://${host}`;
  return withScheme.replace(/\/+$/, '');
}
