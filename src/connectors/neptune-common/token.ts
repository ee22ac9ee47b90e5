/**
 * The Neptune API token, as both Neptune clients read it (docs/neptune-server-api.md §1): base64
 * JSON naming the server (`api_url`, else `api_address`), taken from NEPTUNE_API_TOKEN or, for one
 * side of a copy, TRACKSHIFT_SRC_/TRACKSHIFT_DST_NEPTUNE_API_TOKEN; and the expiry of the access
 * token it is exchanged for. Shared by the 2.x (neptune-api) and 3.x (neptune-scale) connectors.
 */
import { z } from 'zod';
import { UsageError } from '../../util/errors.js';
import type { ConnectorTarget } from '../types.js';

const tokenContent = z.looseObject({ api_address: z.string().optional(), api_url: z.string().optional() });
const jwtClaims = z.looseObject({ exp: z.number().optional() });

/** The token for one side of a copy, and the variable it came from (named in messages, never the token). */
export function tokenOf(target: ConnectorTarget): { token: string; origin: string } {
  for (const name of [`TRACKSHIFT_${target.side.toUpperCase()}_NEPTUNE_API_TOKEN`, 'NEPTUNE_API_TOKEN']) {
    const token = target.env[name];
    if (token) return { token, origin: name };
  }
  throw new UsageError(`${target.location}: no Neptune API token; set NEPTUNE_API_TOKEN (or TRACKSHIFT_${target.side.toUpperCase()}_NEPTUNE_API_TOKEN for this side alone)`);
}

/** The server an API token names: `api_url`, else `api_address` (https:// when it has no scheme). */
export function serverOfToken(token: string, origin: string): string {
  let parsed: z.infer<typeof tokenContent>;
  try {
    // standard base64, as both clients decode it
    parsed = tokenContent.parse(JSON.parse(Buffer.from(token, 'base64').toString('utf8')));
  } catch {
    throw new UsageError(`the Neptune API token in ${origin} is not one: it should be the base64 text Neptune shows under "Get your API token"`);
  }
  const address = parsed.api_url ?? parsed.api_address;
  if (!address) throw new UsageError(`the Neptune API token in ${origin} names no server (neither api_url nor api_address)`);
  return address.includes('://') ? address : `https://${address}`;
}

/** When an access token (a JWT) expires, in ms since the epoch; undefined when it does not say. Its signature is not checked (the clients do not either). */
export function expiryOf(jwt: string): number | undefined {
  try {
    const claims = jwtClaims.parse(JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')));
    return claims.exp !== undefined ? claims.exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
