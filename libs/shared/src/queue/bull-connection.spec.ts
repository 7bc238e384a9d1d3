import { bullConnection, bullOptions } from './queues';

describe('bullConnection', () => {
  it('turns REDIS_URL into the connection options BullMQ opens itself', () => {
    expect(bullConnection('redis://127.0.0.1:6379', 'gateway')).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0, tls: undefined, connectionName: 'hivemind-gateway', maxRetriesPerRequest: null });
    expect(bullConnection('rediss://worker:p%40ss@redis.example:6380/2', 'x')).toMatchObject({ host: 'redis.example', port: 6380, username: 'worker', password: 'p@ss', db: 2, tls: {} });
    expect(bullConnection('redis://:secret@[::1]', 'x')).toMatchObject({ host: '::1', port: 6379, username: undefined, password: 'secret' });
  });

  it('says what is wrong with a REDIS_URL it cannot use', () => {
    expect(() => bullConnection('http://127.0.0.1:6379', 'x')).toThrow('REDIS_URL must start with redis:// or rediss://, not http://');
    expect(() => bullConnection('127.0.0.1:6379', 'x')).toThrow(/REDIS_URL is not a URL|REDIS_URL must start with/);
    expect(() => bullConnection('not a url', 'x')).toThrow('REDIS_URL is not a URL: "not a url"');
    expect(() => bullConnection('redis://host/cache', 'x')).toThrow('REDIS_URL names database "cache"; a database is a number');
  });

  it("puts the node's queues under its prefix", () => {
    expect(bullOptions({ REDIS_URL: 'redis://h:1', REDIS_PREFIX: 'node-a' }, 'gw').prefix).toBe('node-a:q');
  });
});
