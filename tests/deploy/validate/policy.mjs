// policy.mjs FILE - checks the rendered base against the pod security the design asks
// for: non-root, seccomp RuntimeDefault, no service account token, every container
// read-only, unprivileged, without capabilities, with requests and limits; the PIN and
// the token volume mounted only into engine containers, the database URL only into
// gateway containers; the engine socket on an emptyDir; probes on the gateway; a PDB, a
// NetworkPolicy (ingress only on the gateway's port, egress only to PostgreSQL and DNS).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';

const objs = parseAllDocuments(readFileSync(process.argv[2], 'utf8')).map((d) => d.toJS()).filter(Boolean);
const problems = [];
const need = (cond, what) => { if (!cond) problems.push(what); };
const one = (kind) => objs.filter((o) => o.kind === kind);

const dep = one('Deployment')[0];
need(dep, 'a Deployment');
if (dep) {
  const s = dep.spec.template.spec;
  need(s.automountServiceAccountToken === false, 'automountServiceAccountToken: false');
  need(s.securityContext?.runAsNonRoot === true, 'runAsNonRoot');
  need(s.securityContext?.seccompProfile?.type === 'RuntimeDefault', 'seccompProfile RuntimeDefault');
  for (const c of [...(s.initContainers || []), ...s.containers]) {
    const sc = c.securityContext || {};
    need(sc.readOnlyRootFilesystem === true, `${c.name}: readOnlyRootFilesystem`);
    need(sc.allowPrivilegeEscalation === false, `${c.name}: allowPrivilegeEscalation false`);
    need(JSON.stringify(sc.capabilities?.drop) === '["ALL"]', `${c.name}: capabilities drop ALL`);
    need(c.resources?.requests && c.resources?.limits?.cpu && c.resources?.limits?.memory, `${c.name}: requests and limits`);
    const mounts = new Set((c.volumeMounts || []).map((m) => m.name));
    const gateway = c.image.includes('gateway');
    if (gateway) {
      for (const v of ['hsm-pin', 'hsm-pin-secret', 'hsm-tokens', 'ra-keys']) need(!mounts.has(v), `${c.name}: must not mount ${v}`);
    } else {
      need(!JSON.stringify(c).includes('RSSP_DB_URL') && !JSON.stringify(c).includes('rssp-db'), `${c.name}: must not see the database URL`);
    }
  }
  const vol = (n) => s.volumes.find((v) => v.name === n) || {};
  need(vol('engine-socket').emptyDir, 'the engine socket on an emptyDir');
  need(vol('hsm-pin-secret').secret?.secretName === 'rssp-hsm-pin', 'the PIN from the Secret rssp-hsm-pin');
  need(vol('hsm-tokens').persistentVolumeClaim, 'the token directory on a PVC');
  need(vol('ra-keys').configMap?.name === 'rssp-ra-keys', 'the RA public keys from the ConfigMap rssp-ra-keys');
  const gw = s.containers.find((c) => c.name === 'gateway');
  need(gw?.readinessProbe?.httpGet?.path === '/readyz', 'gateway readiness probe /readyz');
  need(gw?.livenessProbe?.httpGet?.path === '/healthz', 'gateway liveness probe /healthz');
  const eng = s.containers.find((c) => c.name === 'engine');
  need(eng && !eng.ports, 'the engine opens no port');
  need(eng?.livenessProbe?.exec?.command?.[1] === 'probe',
    'engine liveness probe: rssp-engine probe (an answer, not only a socket file)');
  need((s.initContainers || []).some((c) => (c.args || []).includes('migrate')), 'a migrate step');
}
need(one('PodDisruptionBudget').length === 1, 'a PodDisruptionBudget');
need(one('Service').length === 1, 'a Service');
need(one('ConfigMap').length >= 1, 'a ConfigMap');
const np = one('NetworkPolicy')[0];
need(np, 'a NetworkPolicy');
if (np) {
  need(JSON.stringify(np.spec.policyTypes?.sort()) === '["Egress","Ingress"]', 'NetworkPolicy for ingress and egress');
  const inPorts = np.spec.ingress.flatMap((r) => r.ports || []).map((p) => p.port);
  need(JSON.stringify(inPorts) === '[8080]', 'ingress only on 8080');
  const outPorts = np.spec.egress.flatMap((r) => r.ports || []).map((p) => `${p.port}/${p.protocol}`).sort();
  need(JSON.stringify(outPorts) === '["53/TCP","53/UDP","5432/TCP"]', 'egress only to 5432 and DNS');
  need(np.spec.egress.every((r) => r.ports?.length), 'no egress rule without ports');
}
for (const p of problems) console.log(`policy: missing or wrong: ${p}`);
console.log(problems.length ? `policy: ${problems.length} problems` : 'policy: ok');
process.exit(problems.length ? 1 : 0);
