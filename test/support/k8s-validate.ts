import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * Checks Kubernetes manifests: every object against the Kubernetes OpenAPI schema of its
 * kind (the validators the kubernetes-models package generates from it, with ajv), then
 * the links between objects that a schema cannot see: a workload's selector matches its
 * pod labels, a Service selects some workload and names ports its pods have, mounts name
 * declared volumes, referenced ConfigMaps exist, and a kustomization lists files that exist.
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

interface PodTemplate {
  metadata?: { labels?: Record<string, string> };
  spec?: {
    containers?: Array<{
      name: string;
      ports?: Array<{ name?: string; containerPort: number }>;
      volumeMounts?: Array<{ name: string }>;
      envFrom?: Array<{ configMapRef?: { name: string } }>;
      env?: Array<{ valueFrom?: { configMapKeyRef?: { name: string } } }>;
    }>;
    volumes?: Array<{ name: string }>;
  };
}

const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

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
