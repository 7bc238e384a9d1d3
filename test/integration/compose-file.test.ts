import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ROOT } from '../support/stack';

// The compose file is read as a plain object and checked field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

const composeText = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as Doc;
const services = compose.services as Record<string, Doc>;

/** Each ${VAR...} the compose file interpolates, with its default (after :-) or its error (after :?). */
function interpolated(text: string): Map<string, { dflt?: string; required?: string }> {
  const out = new Map<string, { dflt?: string; required?: string }>();
  for (const m of text.matchAll(/\$\{([A-Z_][A-Z0-9_]*)(?::(-|\?)([^}]*))?\}/g)) {
    const [, name, op, rest] = m;
    const prev = out.get(name) ?? {};
    out.set(name, op === '-' ? { ...prev, dflt: rest } : op === '?' ? { ...prev, required: rest } : prev);
  }
  return out;
}

/** KEY=value lines of an env file. */
function envFile(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(path.join(ROOT, file), 'utf8').split('\n')) {
    const m = line.match(/^([A-Z_][A-Z0-9_]*)=(.*)$/);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

describe('docker-compose.yml defaults (the compose smoke test runs them)', () => {
  it('publishes the dashboard on 127.0.0.1 unless HTTP_PUBLISH_ADDR says otherwise, and Redis on no port', () => {
    expect(services.gateway.ports).toContain('${HTTP_PUBLISH_ADDR:-127.0.0.1}:${GATEWAY_HTTP_PUBLISH:-5001}:5001');
    // The gRPC port the pool dials is the only one on every interface.
    const open = Object.entries(services).flatMap(([name, s]) => ((s.ports ?? []) as string[]).filter((p) => !p.startsWith('${') || !/_ADDR:-127\.0\.0\.1\}/.test(p)).map((p) => `${name} ${p}`));
    expect(open).toEqual(['gateway ${GATEWAY_GRPC_PUBLISH:-50053}:50053']);
    expect(services.redis.ports).toBeUndefined();
  });

  it('runs Redis with the generated password, in protected mode, and the services read the password', () => {
    const args = (services.redis.command as string[]).join(' ');
    expect(args).toMatch(/^redis-server \/secret\/redis\.conf /);
    expect(args).toContain('--protected-mode yes');
    expect(args).not.toContain('--requirepass');
    const init = (services['redis-secret'].command as string[]).join('\n');
    expect(init).toContain("printf 'requirepass %s\\n'");
    expect(init).toContain('/dev/urandom');
    expect(services.redis.depends_on['redis-secret']).toEqual({ condition: 'service_completed_successfully' });
    for (const name of ['gateway', 'executor', 'monitor']) {
      expect([name, services[name].environment.REDIS_PASSWORD_FILE]).toEqual([name, '/run/hivemind-redis/password']);
      expect([name, services[name].volumes]).toEqual([name, expect.arrayContaining(['redis-secret:/run/hivemind-redis:ro'])]);
    }
  });

  it('requires NODE_ID, NODE_PASSWORD and NODE_POOL_ADDRESS with a message naming each; scripts/compose-demo.sh sets them for the demo pool', () => {
    const vars = interpolated(composeText);
    for (const v of ['NODE_ID', 'NODE_PASSWORD', 'NODE_POOL_ADDRESS']) {
      expect([v, vars.get(v)?.dflt]).toEqual([v, undefined]);
      expect([v, vars.get(v)?.required]).toEqual([v, expect.stringContaining(`set ${v}`)]);
    }
    const demo = new Map([...readFileSync(path.join(ROOT, 'scripts/compose-demo.sh'), 'utf8').matchAll(/^export ([A-Z_]+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
    expect(Object.fromEntries(demo)).toMatchObject({ COMPOSE_PROFILES: 'devpool', NODE_ID: 'alice', NODE_PASSWORD: 'alice-password', NODE_POOL_ADDRESS: 'devpool:50051' });
  });

  it('rotates every service\'s json-file log', () => {
    for (const [name, s] of Object.entries(services)) {
      expect([name, s.logging]).toEqual([name, { driver: 'json-file', options: { 'max-size': '${LOG_MAX_SIZE:-10m}', 'max-file': '${LOG_MAX_FILE:-5}' } }]);
    }
  });

  it('.env.example lists every variable the compose file reads, with its default', () => {
    const vars = interpolated(composeText);
    const example = envFile('.env.example');
    expect([...example.keys()].sort()).toEqual([...vars.keys()].sort());
    for (const [name, { dflt, required }] of vars) {
      expect([name, example.get(name)]).toEqual([name, required !== undefined ? '' : (dflt ?? '')]);
    }
    // Each one has a comment above it (or shares the one above its group).
    const lines = readFileSync(path.join(ROOT, '.env.example'), 'utf8').split('\n');
    for (const [i, line] of lines.entries()) {
      if (!/^[A-Z_]+=/.test(line)) continue;
      let j = i - 1;
      while (j >= 0 && /^[A-Z_]+=/.test(lines[j])) j--;
      expect([line, lines[j]?.startsWith('#')]).toEqual([line, true]);
    }
  });
});
