import { mkdtempSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { manifestFiles, validateManifests } from '../support/k8s-validate';

const K8S = path.resolve(__dirname, '../../deploy/k8s');

describe('Kubernetes manifests (deploy/k8s)', () => {
  it('every object is valid for its kind, and the objects fit together', () => {
    const files = manifestFiles(K8S);
    const { findings, objects } = validateManifests(files);
    expect(findings).toEqual([]);
    // namespace, config, redis (2), gateway (2), executor, monitor, dind executor, kustomization
    expect(objects).toBe(10);
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
      containers: [{ name: c, image: i, volumeMounts: [{ name: nope, mountPath: /d }], envFrom: [{ configMapRef: { name: cfg } }] }]
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
        'Service/s: selector {"app":"nothing"} matches no workload',
        'Frobnicator/f: unknown kind Frobnicator in v1',
      ]),
    );
  });
});
