import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * Checks Kubernetes manifests: every object against the Kubernetes OpenAPI schema of its
 * kind (the validators the kubernetes-models package generates from it, with ajv), then
 * the links between objects that a schema cannot see: a workload's selector matches its
 * pod labels, a Service selects some workload and names ports its pods have, mounts name
 * declared volumes, referenced ConfigMaps exist, probes name ports their container has, a
 * NetworkPolicy selects some workload and every pod selector it allows traffic from
 * selects one too, and a kustomization lists files that exist.
 * Unknown fields are not reported (the schemas allow them, as kubeconform does without
 * --strict).
 */

type Obj = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string; labels?: Record<string, string> } };

interface Model {
  validate(): void;
}

export interface Finding {
  file: string;
  object: string;
  message: string;
}

export function manifestFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = path.join(dir, name);
    if (statSync(p).isDirectory()) out.push(...manifestFiles(p));
    else if (/\.ya?ml$/.test(name)) out.push(p);
  }
  return out;
}

function modelFor(apiVersion: string, kind: string): (new (data: unknown) => Model) | null {
  if (!/^[a-z0-9.]+(\/v[0-9a-z]+)?$/.test(apiVersion) || !/^[A-Z][A-Za-z]+$/.test(kind)) return null;
  try {
    const mod = require(`kubernetes-models/${apiVersion}/${kind}`) as Record<string, new (data: unknown) => Model>;
    return mod[kind] ?? null;
  } catch {
    return null;
  }
}

interface Probe {
  httpGet?: { path?: string; port: string | number };
  tcpSocket?: { port: string | number };
  exec?: { command: string[] };
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: Array<{ key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }>;
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec?: {
    containers?: Array<{
      name: string;
      ports?: Array<{ name?: string; containerPort: number }>;
      livenessProbe?: Probe;
      readinessProbe?: Probe;
      volumeMounts?: Array<{ name: string }>;
      envFrom?: Array<{ configMapRef?: { name: string } }>;
      env?: Array<{ valueFrom?: { configMapKeyRef?: { name: string } } }>;
    }>;
    volumes?: Array<{ name: string }>;
  };
}

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

/** A label selector (matchLabels and matchExpressions) against a pod's labels; an empty one selects every pod. */
export function selects(selector: LabelSelector, labels: Record<string, string> = {}): boolean {
  return (
    matches(selector.matchLabels ?? {}, labels) &&
    (selector.matchExpressions ?? []).every((e) => {
      const has = Object.prototype.hasOwnProperty.call(labels, e.key);
      switch (e.operator) {
        case 'In':
          return has && (e.values ?? []).includes(labels[e.key]);
        case 'NotIn':
          return !has || !(e.values ?? []).includes(labels[e.key]);
        case 'Exists':
          return has;
        case 'DoesNotExist':
          return !has;
      }
    })
  );
}

export function validateManifests(files: string[]): { findings: Finding[]; objects: number } {
  const findings: Finding[] = [];
  const objects: Array<{ file: string; obj: Obj }> = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const doc of parseAllDocuments(text)) {
      if (doc.errors.length) {
        findings.push({ file, object: '(yaml)', message: doc.errors[0].message });
        continue;
      }
      const obj = doc.toJS() as Obj | null;
      if (obj) objects.push({ file, obj });
    }
  }

  const workloads: Array<{ file: string; name: string; ns?: string; template: PodTemplate; claims: string[] }> = [];
  const configMaps = new Set<string>();
  for (const { file, obj } of objects) {
    const id = `${obj.kind ?? '?'}/${obj.metadata?.name ?? '?'}`;
    const add = (message: string) => findings.push({ file, object: id, message });
    if (!obj.apiVersion || !obj.kind) {
      add('apiVersion and kind are required');
      continue;
    }
    if (obj.kind === 'Kustomization') {
      for (const r of (obj.resources as string[] | undefined) ?? []) if (!existsSync(path.join(path.dirname(file), r))) add(`resource ${r} does not exist`);
      continue;
    }
    const Model = modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
      add(`unknown kind ${obj.kind} in ${obj.apiVersion}`);
      continue;
    }
    try {
      new Model(obj).validate();
    } catch (err) {
      add((err as Error).message);
      continue;
    }
    if (obj.kind === 'ConfigMap') configMaps.add(`${obj.metadata?.namespace}/${obj.metadata?.name}`);
    if (['Deployment', 'StatefulSet', 'DaemonSet'].includes(obj.kind)) {
      const spec = obj.spec as { selector: { matchLabels?: Record<string, string> }; template: PodTemplate; volumeClaimTemplates?: Array<{ metadata?: { name?: string } }> };
      if (!matches(spec.selector.matchLabels ?? {}, spec.template.metadata?.labels)) add('spec.selector.matchLabels does not match the pod template labels');
      workloads.push({ file, name: id, ns: obj.metadata?.namespace, template: spec.template, claims: (spec.volumeClaimTemplates ?? []).map((c) => c.metadata?.name ?? '') });
    }
  }

  for (const w of workloads) {
    const add = (message: string) => findings.push({ file: w.file, object: w.name, message });
    const volumes = new Set([...(w.template.spec?.volumes ?? []).map((v) => v.name), ...w.claims]);
    for (const c of w.template.spec?.containers ?? []) {
      for (const m of c.volumeMounts ?? []) if (!volumes.has(m.name)) add(`container ${c.name} mounts volume ${m.name}, which is not declared`);
      const refs = [...(c.envFrom ?? []).map((e) => e.configMapRef?.name), ...(c.env ?? []).map((e) => e.valueFrom?.configMapKeyRef?.name)].filter((n): n is string => !!n);
      for (const r of refs) if (!configMaps.has(`${w.ns}/${r}`)) add(`container ${c.name} uses ConfigMap ${r}, which is not among the manifests`);
      for (const [kind, probe] of [['liveness', c.livenessProbe], ['readiness', c.readinessProbe]] as const) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (typeof port === 'string' && !(c.ports ?? []).some((p) => p.name === port)) add(`container ${c.name}'s ${kind} probe names port ${port}, which the container does not declare`);
      }
    }
  }

  for (const { file, obj } of objects) {
    if (obj.kind !== 'NetworkPolicy') continue;
    const add = (message: string) => findings.push({ file, object: `NetworkPolicy/${obj.metadata?.name}`, message });
    const spec = obj.spec as { podSelector: LabelSelector; ingress?: Array<{ from?: Array<{ podSelector?: LabelSelector; namespaceSelector?: LabelSelector }> }> };
    const inNs = workloads.filter((w) => w.ns === obj.metadata?.namespace);
    if (!inNs.some((w) => selects(spec.podSelector, w.template.metadata?.labels))) add(`podSelector ${JSON.stringify(spec.podSelector)} matches no workload`);
    for (const rule of spec.ingress ?? []) {
      for (const peer of rule.from ?? []) {
        if (peer.podSelector && !peer.namespaceSelector && !inNs.some((w) => selects(peer.podSelector as LabelSelector, w.template.metadata?.labels))) {
          add(`ingress from podSelector ${JSON.stringify(peer.podSelector)} matches no workload`);
        }
      }
    }
  }

  for (const { file, obj } of objects) {
    if (obj.kind !== 'Service') continue;
    const spec = obj.spec as { selector?: Record<string, string>; ports?: Array<{ name?: string; targetPort?: string | number }> };
    if (!spec.selector) continue;
    const add = (message: string) => findings.push({ file, object: `Service/${obj.metadata?.name}`, message });
    const selected = workloads.filter((w) => w.ns === obj.metadata?.namespace && matches(spec.selector ?? {}, w.template.metadata?.labels));
    if (!selected.length) {
      add(`selector ${JSON.stringify(spec.selector)} matches no workload`);
      continue;
    }
    const ports = selected.flatMap((w) => (w.template.spec?.containers ?? []).flatMap((c) => c.ports ?? []));
    for (const p of spec.ports ?? []) {
      const t = p.targetPort;
      if (typeof t === 'string' && !ports.some((cp) => cp.name === t)) add(`port ${p.name ?? '?'} targets ${t}, which no selected container names`);
      if (typeof t === 'number' && !ports.some((cp) => cp.containerPort === t)) add(`port ${p.name ?? '?'} targets ${t}, which no selected container exposes`);
    }
  }
  return { findings, objects: objects.length };
}
