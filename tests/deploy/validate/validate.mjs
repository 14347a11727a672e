// validate.mjs FILE... - offline validation of rendered Kubernetes manifests.
// Each object is checked twice: against the OpenAPI schema of its kind (kubernetes-models:
// types, enums, required fields) and for unknown fields (the attributeTypeMap of
// @kubernetes/client-node's model classes), which the schemas alone let through.
// Prints one line per object; exits 1 when any object fails.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import * as k8s from '@kubernetes/client-node';

const errors = [];
let count = 0;

async function modelClass(apiVersion, kind) {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : [null, apiVersion];
  const mod = await import(group ? `kubernetes-models/${group}/${version}` : `kubernetes-models/${version}`);
  return mod[kind];
}

// client-node names its classes V1Deployment, V1PodDisruptionBudget, ...
function typeFor(apiVersion, kind) {
  const version = apiVersion.split('/').pop();
  return `${version[0].toUpperCase()}${version.slice(1)}${kind}`;
}

function walk(value, type, path, where) {
  if (value === null || value === undefined) return;
  let m;
  if ((m = /^Array<(.+)>$/.exec(type))) {
    if (!Array.isArray(value)) { where.push(`${path}: expected a list`); return; }
    value.forEach((v, i) => walk(v, m[1], `${path}[${i}]`, where));
    return;
  }
  if ((m = /^\{ \[key: string\]: (.+); \}$/.exec(type))) {
    for (const [k, v] of Object.entries(value)) walk(v, m[1], `${path}.${k}`, where);
    return;
  }
  const cls = k8s[type];
  if (!cls || typeof cls.getAttributeTypeMap !== 'function') return; // string, number, IntOrString, ...
  if (typeof value !== 'object' || Array.isArray(value)) { where.push(`${path}: expected an object (${type})`); return; }
  const attrs = cls.getAttributeTypeMap();
  for (const [k, v] of Object.entries(value)) {
    const a = attrs.find((x) => x.baseName === k);
    if (!a) { where.push(`${path}.${k}: unknown field in ${type}`); continue; }
    walk(v, a.type, `${path}.${k}`, where);
  }
}

for (const file of process.argv.slice(2)) {
  for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
    if (doc.errors.length) { errors.push(`${file}: YAML: ${doc.errors[0].message}`); continue; }
    const obj = doc.toJS();
    if (!obj) continue;
    count++;
    const id = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    const where = [];
    // kustomize folds long base64 values over several lines; the API server's decoder
    // (Go's base64.StdEncoding) skips the newlines, so the schema check does too.
    if (obj.kind === 'Secret' && obj.data)
      for (const k of Object.keys(obj.data)) obj.data[k] = String(obj.data[k]).replace(/[\r\n]/g, '');
    const Model = obj.apiVersion && obj.kind ? await modelClass(obj.apiVersion, obj.kind).catch(() => null) : null;
    if (!Model) { errors.push(`${id}: unknown apiVersion/kind ${obj.apiVersion} ${obj.kind}`); continue; }
    try { new Model(obj).validate(); } catch (e) { where.push(`schema: ${e.message}`); }
    walk(obj, typeFor(obj.apiVersion, obj.kind), '', where);
    if (where.length) errors.push(...where.map((w) => `${id}: ${w}`));
    else console.log(`ok   ${id}`);
  }
}
for (const e of errors) console.log(`FAIL ${e}`);
console.log(`${count - new Set(errors.map((e) => e.split(': ').slice(0, 2).join(': '))).size} passed, ${new Set(errors.map((e) => e.split(': ').slice(0, 2).join(': '))).size} failed`);
process.exit(errors.length || count === 0 ? 1 : 0);
