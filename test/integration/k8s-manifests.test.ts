import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { readFileSync } from 'node:fs';
import { LabelSelector, manifestFiles, selects, validateManifests } from '../support/k8s-validate';

const K8S = path.resolve(__dirname, '../../deploy/k8s');

// Manifests are read as plain objects and checked field by field.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

/** Every object of deploy/k8s, with its file. */
function allDocs(): Array<{ file: string; doc: Doc }> {
  return manifestFiles(K8S).flatMap((file) => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => ({ file, doc: d.toJS() as Doc })));
}

/** The worker containers (gateway, executor in both sets, monitor), with where they are. */
function workerContainers(): Array<{ where: string; container: Doc; pod: Doc }> {
  return allDocs()
    .filter(({ doc }) => doc.kind === 'Deployment')
    .flatMap(({ file, doc }) =>
      (doc.spec.template.spec.containers as Doc[])
        .filter((c) => String(c.image).startsWith('hivemind/'))
        .map((container) => ({ where: `${path.relative(K8S, file)} ${doc.metadata.name}/${container.name}`, container, pod: doc.spec.template })),
    );
}

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('every object is valid for its kind, and the objects fit together', () => {
    const files = manifestFiles(K8S);
    const { findings, objects } = validateManifests(files);
    expect(findings).toEqual([]);
    // namespace, config, redis (3), gateway (3), executor, monitor, dind executor, kustomization
    expect(objects).toBe(12);
  });

  it('the default set has redis, gateway, scalable executors with the Docker socket, and monitor', () => {
    const { parseAllDocuments } = require('yaml') as typeof import('yaml');
    const { readFileSync } = require('node:fs') as typeof import('node:fs');
    const docs = manifestFiles(K8S)
      .filter((f) => !f.includes(`${path.sep}dind${path.sep}`))
      .flatMap((f) => parseAllDocuments(readFileSync(f, 'utf8')).map((d) => d.toJS()));
    const kinds = docs.map((d) => `${d.kind}/${d.metadata?.name}`);
    expect(kinds).toEqual(expect.arrayContaining(['StatefulSet/redis', 'Service/redis', 'Deployment/gateway', 'Service/gateway', 'Deployment/executor', 'Deployment/monitor']));
    const executor = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === 'executor');
    expect(executor.spec.replicas).toBeGreaterThan(1);
    expect(executor.spec.template.spec.volumes).toEqual(expect.arrayContaining([{ name: 'docker-socket', hostPath: { path: '/var/run/docker.sock', type: 'Socket' } }]));
    const redis = docs.find((d) => d.kind === 'StatefulSet');
    expect(redis.spec.template.spec.containers[0].args.join(' ')).toMatch(/--appendonly yes.*--maxmemory-policy noeviction/);
  });

  it('liveness asks /health/live and readiness /health/ready, on a port the container declares', () => {
    const containers = workerContainers();
    expect(containers.map((c) => c.where).sort()).toEqual([
      'dind/executor.yaml executor/executor',
      'executor.yaml executor/executor',
      'gateway.yaml gateway/gateway',
      'monitor.yaml monitor/monitor',
    ]);
    for (const { where, container } of containers) {
      const ports = (container.ports as Doc[]).map((p) => p.name);
      expect([where, container.livenessProbe.httpGet.path]).toEqual([where, '/health/live']);
      expect([where, container.readinessProbe.httpGet.path]).toEqual([where, '/health/ready']);
      expect([where, ports]).toEqual([where, expect.arrayContaining([container.livenessProbe.httpGet.port, container.readinessProbe.httpGet.port])]);
      expect(container.livenessProbe.exec).toBeUndefined();
    }
  });

  it('the pool dials a NodePort Service that keeps its source address; the dashboard stays inside the cluster', () => {
    const services = allDocs().filter(({ doc }) => doc.kind === 'Service').map(({ doc }) => doc);
    const grpc = services.find((s) => s.metadata.name === 'gateway') as Doc;
    expect(grpc.spec.type).toBe('NodePort');
    expect(grpc.spec.externalTrafficPolicy).toBe('Local');
    expect((grpc.spec.ports as Doc[]).map((p) => p.targetPort)).toEqual(['grpc']);
    // No other Service puts anything on a node's or a load balancer's address.
    for (const s of services.filter((x) => x !== grpc)) expect([s.metadata.name, s.spec.type ?? 'ClusterIP']).toEqual([s.metadata.name, 'ClusterIP']);
    const http = services.find((s) => s.metadata.name === 'gateway-http') as Doc;
    expect((http.spec.ports as Doc[]).map((p) => p.targetPort)).toEqual(['http']);
  });

  it('a NetworkPolicy lets only the node\'s pods reach Redis', () => {
    const docs = allDocs().map(({ doc }) => doc);
    const policies = docs.filter((d) => d.kind === 'NetworkPolicy' && selects(d.spec.podSelector as LabelSelector, { 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/part-of': 'hivemind-worker' }));
    expect(policies).toHaveLength(1);
    const policy = policies[0];
    expect(policy.spec.policyTypes).toContain('Ingress');
    expect(policy.spec.ingress).toHaveLength(1);
    const rule = policy.spec.ingress[0] as Doc;
    expect(rule.ports).toEqual([{ protocol: 'TCP', port: 'redis' }]);
    const allowed = (labels: Record<string, string>) => (rule.from as Doc[]).some((peer) => !peer.namespaceSelector && !peer.ipBlock && selects(peer.podSelector as LabelSelector, labels));
    expect((rule.from as Doc[]).every((peer) => peer.podSelector && !peer.namespaceSelector && !peer.ipBlock)).toBe(true);
    const workloads = docs.filter((d) => ['Deployment', 'StatefulSet'].includes(d.kind));
    const reach = workloads.filter((w) => allowed(w.spec.template.metadata.labels)).map((w) => w.metadata.name);
    expect([...new Set(reach)].sort()).toEqual(['executor', 'gateway', 'monitor']);
    expect(allowed({ app: 'something-else' })).toBe(false);
    expect(allowed({ 'app.kubernetes.io/name': 'gateway' })).toBe(false);
    expect(allowed({ 'app.kubernetes.io/name': 'redis', 'app.kubernetes.io/part-of': 'hivemind-worker' })).toBe(false);
  });

  it('Redis wants a password from a Secret, in protected mode, and every worker container sends it', () => {
    const docs = allDocs().map(({ doc }) => doc);
    const redis = docs.find((d) => d.kind === 'StatefulSet' && d.metadata.name === 'redis') as Doc;
    const pod = redis.spec.template.spec;
    const server = (pod.containers as Doc[]).find((c) => c.name === 'redis') as Doc;
    const args = (server.args as string[]).join(' ');
    expect(args).toContain('--protected-mode yes');
    expect(args).not.toMatch(/--protected-mode no|--requirepass/);
    const conf = args.match(/^redis-server (\S+\.conf) /)?.[1] as string;
    expect(conf).toBeDefined();
    const init = (pod.initContainers as Doc[])[0];
    expect(init.command.join(' ')).toContain(`requirepass %s`);
    expect(init.command.join(' ')).toContain(conf);
    expect(init.env).toEqual([{ name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'hivemind-redis', key: 'password' } } }]);
    expect(server.env).toEqual([{ name: 'REDISCLI_AUTH', valueFrom: { secretKeyRef: { name: 'hivemind-redis', key: 'password' } } }]);
    for (const { where, container } of workerContainers()) {
      const env = (container.env as Doc[]).find((e) => e.name === 'REDIS_PASSWORD');
      expect([where, env?.valueFrom]).toEqual([where, { secretKeyRef: { name: 'hivemind-redis', key: 'password' } }]);
    }
  });

  it('reports broken manifests (a wrong type, a selector that misses, a missing volume, an unknown kind)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'hm-k8s-'));
    writeFileSync(
      path.join(dir, 'bad.yaml'),
      `apiVersion: apps/v1
kind: Deployment
metadata: { name: a, namespace: x }
spec:
  replicas: two
  selector: { matchLabels: { app: a } }
  template:
    metadata: { labels: { app: a } }
    spec: { containers: [{ name: c, image: i }] }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: b, namespace: x }
spec:
  selector: { matchLabels: { app: b } }
  template:
    metadata: { labels: { app: other } }
    spec:
      containers: [{ name: c, image: i, volumeMounts: [{ name: nope, mountPath: /d }], envFrom: [{ configMapRef: { name: cfg } }], livenessProbe: { httpGet: { path: /health/live, port: http } } }]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: np, namespace: x }
spec:
  podSelector: { matchLabels: { app: gone } }
  ingress: [{ from: [{ podSelector: { matchExpressions: [{ key: app, operator: In, values: [nobody] }] } }] }]
---
apiVersion: v1
kind: Service
metadata: { name: s, namespace: x }
spec:
  selector: { app: nothing }
  ports: [{ port: 80 }]
---
apiVersion: v1
kind: Frobnicator
metadata: { name: f }
`,
    );
    const { findings } = validateManifests([path.join(dir, 'bad.yaml')]);
    const text = findings.map((f) => `${f.object}: ${f.message}`);
    expect(text).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^Deployment\/a: .*replicas must be integer/),
        'Deployment/b: spec.selector.matchLabels does not match the pod template labels',
        'Deployment/b: container c mounts volume nope, which is not declared',
        'Deployment/b: container c uses ConfigMap cfg, which is not among the manifests',
        "Deployment/b: container c's liveness probe names port http, which the container does not declare",
        'NetworkPolicy/np: podSelector {"matchLabels":{"app":"gone"}} matches no workload',
        'NetworkPolicy/np: ingress from podSelector {"matchExpressions":[{"key":"app","operator":"In","values":["nobody"]}]} matches no workload',
        'Service/s: selector {"app":"nothing"} matches no workload',
        'Frobnicator/f: unknown kind Frobnicator in v1',
      ]),
    );
  });
});
