import { Metadata, status } from '@grpc/grpc-js';
import { PoolClient } from './pool-client';
import * as grpc from './grpc';

jest.mock('./grpc', () => ({ ...jest.requireActual('./grpc'), unary: jest.fn() }));
const unary = grpc.unary as jest.MockedFunction<typeof grpc.unary>;

/** The deployed pool's answer to an expired token. */
const refused = Object.assign(new Error('Exception deserializing request!'), { code: status.INTERNAL, details: 'Exception deserializing request!' });

/** A pool whose logins issue token-1, token-2, ...; only the newest token is taken. */
function fakePool() {
  let issued = 0;
  unary.mockReset();
  unary.mockImplementation(async (_client, _fn, req, md = new Metadata()) => {
    if ((req as { password?: string }).password !== undefined) return { success: true, message: '', token: `token-${++issued}` };
    await new Promise((r) => setImmediate(r));
    return md.get('authorization')[0] === `Bearer token-${issued}` ? { success: true } : Promise.reject(refused);
  });
  return { logins: () => issued };
}

describe('PoolClient', () => {
  it('logs in again once when calls carry a token the pool refuses, and says so', async () => {
    const pool = fakePool();
    const relogins: unknown[] = [];
    const client = new PoolClient('localhost:1', { username: 'alice', password: 'pw' }, { maxMessageBytes: 1 << 20, callTimeoutMs: 1000, onRelogin: (err) => relogins.push(err) });
    const call = () => client.call(client.nodes, client.nodes.reportStatus as never, () => ({}));
    await call();
    expect(pool.logins()).toBe(1);
    expect(relogins).toHaveLength(0); // the first login is no re-login

    await client.login(); // the pool now takes only token-2: token-1 expired, as it were
    await client.login(); // ... and token-3
    // Calls issued with a refused token: one login however many of them fail together.
    (client as unknown as { token: string }).token = 'token-1';
    await Promise.all([call(), call(), call()]);
    expect(pool.logins()).toBe(4);
    expect(relogins).toEqual([refused]);
    client.close();
  });
});
