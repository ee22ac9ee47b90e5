/**
 * The Neptune 3.x API client's own pieces: the run page as neptune-scale's get_run_url() builds it
 * (Python's quote_plus), the token a copy takes for each side, and the access token refreshed
 * before it runs out (on the test server, the clock moved on).
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { HttpClient } from '../../src/util/http.js';
import { startNeptuneServer } from '../harness/neptune-server/index.js';
import { NeptuneScaleApi } from '../../src/connectors/neptune-scale/api.js';
import { tokenOf } from '../../src/connectors/neptune-common/token.js';

const token = (content: object) => Buffer.from(JSON.stringify(content)).toString('base64');

describe('NeptuneScaleApi', () => {
  it('builds a run page as get_run_url() does, from the token’s api_url', async () => {
    const api = new NeptuneScaleApi({ token: token({ api_address: 'https://other.example', api_url: 'https://app.example/' }), origin: 'NEPTUNE_API_TOKEN', side: 'destination' });
    try {
      // what Python's urllib.parse.quote_plus gives for each
      expect(api.runUrl('ws/proj', 'a b/c(1)')).toBe('https://app.example/ws/proj/-/run/?customId=a+b%2Fc%281%29');
      expect(api.runUrl('my ws/p*', "it's*~!")).toBe('https://app.example/my+ws/p%2A/-/run/?customId=it%27s%2A~%21');
      expect(api.runUrl('ws/proj', 'é日')).toBe('https://app.example/ws/proj/-/run/?customId=%C3%A9%E6%97%A5');
    } finally {
      await api.close();
    }
  });

  it('refuses a token that names no server, without printing it', () => {
    const bad = token({ api_key: 'secret-key' });
    expect(() => new NeptuneScaleApi({ token: bad, origin: 'NEPTUNE_API_TOKEN', side: 'destination' })).toThrow(/the Neptune API token in NEPTUNE_API_TOKEN names no server/);
    expect(() => new NeptuneScaleApi({ token: 'not base64 json', origin: 'TRACKSHIFT_DST_NEPTUNE_API_TOKEN', side: 'destination' })).toThrow(/TRACKSHIFT_DST_NEPTUNE_API_TOKEN is not one/);
  });

  it('takes the side’s own token before the common one', () => {
    const target = (env: NodeJS.ProcessEnv) => ({ location: 'neptune-scale://ws/p', side: 'dst' as const, env });
    expect(tokenOf(target({ NEPTUNE_API_TOKEN: 'common', TRACKSHIFT_DST_NEPTUNE_API_TOKEN: 'mine' }))).toEqual({ token: 'mine', origin: 'TRACKSHIFT_DST_NEPTUNE_API_TOKEN' });
    expect(tokenOf(target({ NEPTUNE_API_TOKEN: 'common', TRACKSHIFT_SRC_NEPTUNE_API_TOKEN: 'theirs' }))).toEqual({ token: 'common', origin: 'NEPTUNE_API_TOKEN' });
    expect(() => tokenOf(target({}))).toThrow(/no Neptune API token; set NEPTUNE_API_TOKEN \(or TRACKSHIFT_DST_NEPTUNE_API_TOKEN/);
  });

  afterEach(() => vi.useRealTimers());

  it('refreshes the access token before it runs out, at the token endpoint the discovery names', async () => {
    const server = await startNeptuneServer({ projects: [['ws', 'p']] });
    const api = new NeptuneScaleApi({ token: server.token, origin: 'NEPTUNE_API_TOKEN', side: 'destination' });
    // every JSON call as it is made (they go through: an observer, not a stand-in)
    const calls = vi.spyOn(HttpClient.prototype, 'json');
    const posts = () => calls.mock.calls.filter(([method, path]) => method === 'POST' && String(path).endsWith('openid-connect/token')).length;
    try {
      expect(await api.projectExists('ws/p')).toBe(true);
      expect(server.calls.get('exchangeApiToken')).toBe(1);
      expect(posts()).toBe(0);
      // an hour on: the token (valid for one) has less than the 30 s margin left
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(Date.now() + 3600_000 - 10_000);
      expect(await api.projectExists('ws/p')).toBe(true);
      expect(posts()).toBe(1);
      expect(server.calls.get('exchangeApiToken')).toBe(1);
      // and the new token serves until it runs out in turn
      expect(await api.projectExists('ws/p')).toBe(true);
      expect(posts()).toBe(1);
    } finally {
      calls.mockRestore();
      await api.close();
      await server.close();
    }
  });
});
