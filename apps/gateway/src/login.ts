#!/usr/bin/env node
/**
 * npm run login: asks for the volunteer's Node Pool username and password (the
 * password is not echoed), checks them with the pool, and stores them in
 * CREDENTIALS_FILE with mode 0600 for the gateway to use. Interactive only.
 */
import 'reflect-metadata';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { loadWorkerConfig } from '@hivemind/shared/config/worker-config';
import { grpcErrorText } from '@hivemind/shared/proto/grpc';
import { PoolClient } from '@hivemind/shared/proto/pool-client';
import { storeCredentials } from '@hivemind/shared/security/secrets';
import { poolChannelCredentials } from '@hivemind/shared/security/tls';
import { errorMessage } from '@hivemind/shared/util/errors';

async function main(): Promise<number> {
  if (!process.stdin.isTTY) {
    console.error('npm run login asks for your password interactively; in scripts set NODE_PASSWORD or NODE_PASSWORD_FILE instead');
    return 2;
  }
  let config;
  try {
    config = loadWorkerConfig();
  } catch (err) {
    console.error(errorMessage(err));
    return 2;
  }
  let muted = false;
  const out = new Writable({
    write(chunk, _enc, cb) {
      if (!muted) process.stdout.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output: out, terminal: true });
  // The iterator keeps lines typed ahead of a prompt; question() would drop them.
  const lines = rl[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    return r.done ? null : (r.value as string);
  };
  process.stdout.write(`Node Pool username${config.NODE_ID ? ` [${config.NODE_ID}]` : ''}: `);
  const typed = await next();
  process.stdout.write('Password: ');
  muted = true;
  const password = typed === null ? null : await next();
  muted = false;
  process.stdout.write('\n');
  rl.close();
  const username = typed?.trim() || config.NODE_ID;
  if (!username || !password) {
    console.error('a username and a password are both needed');
    return 2;
  }
  const pool = new PoolClient(config.NODE_POOL_ADDRESS, { username, password }, {
    maxMessageBytes: 1 << 20,
    callTimeoutMs: config.POOL_CALL_TIMEOUT * 1000,
    channelCredentials: poolChannelCredentials(config),
  });
  try {
    await pool.login();
  } catch (err) {
    console.error(`login to ${config.NODE_POOL_ADDRESS} failed: ${grpcErrorText(err)}`);
    return 1;
  } finally {
    pool.close();
  }
  const file = path.resolve(config.CREDENTIALS_FILE);
  await storeCredentials(file, { username, password });
  console.log(`logged in as ${username}; credentials stored in ${file} (mode 0600)`);
  return 0;
}

void main().then((code) => process.exit(code));
