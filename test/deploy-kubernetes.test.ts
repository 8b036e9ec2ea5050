import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockerfileParser, Env } from 'dockerfile-ast';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRegistryFile } from '../src/clients/yaml-registry.js';
import { loadConfig, type Config } from '../src/config/config.js';
import { SHUTDOWN_TIMEOUT_MS } from '../src/server/start-server.js';
import { ConfigError } from '../src/shared/config-error.js';
import { buildTestApp, tempDir } from './helpers.js';
import { startServerProcess } from './server-process.js';
import { plainSql, POSTGRES_URL, requirePostgres } from './store/postgres-helpers.js';

// deploy/kubernetes, checked offline: every manifest against the Kubernetes API schemas (the
// kubernetes-models package ships them as validators), the kustomization against the folder,
// and what the manifests set against what tollgate reads: its own config and registry loaders,
// its routes, its environment overrides, the image's user, port and config path.
// Each check is a function that lists problems; each is shown to find one in a mutated copy.

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIR = join(ROOT, 'deploy/kubernetes');

// biome-ignore lint/suspicious/noExplicitAny: manifests are free-form YAML, checked field by field below.
type Doc = any;

interface Bundle {
  /** Files in the folder. */
  listing: string[];
  kustomization: Doc;
  /** Every object kubectl apply -k would send, the generated ConfigMaps included. */
  resources: Doc[];
}

function loadBundle(dir: string): Bundle {
  const listing = readdirSync(dir).sort();
  const kustomization = parseYaml(readFileSync(join(dir, 'kustomization.yaml'), 'utf8')) as Doc;
  const resources: Doc[] = [];
  for (const file of (kustomization.resources ?? []) as string[]) {
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), 'utf8'))) {
      if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0]!.message}`);
      const value = doc.toJS() as Doc;
      if (value !== null) resources.push(value);
    }
  }
  for (const generator of (kustomization.configMapGenerator ?? []) as Doc[]) {
    const data: Record<string, string> = {};
    for (const file of generator.files as string[]) data[posix.basename(file)] = readFileSync(join(dir, file), 'utf8');
    resources.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data });
  }
  return { listing, kustomization, resources };
}

// ---- the image, as the Dockerfile builds it ----

const dockerfile = DockerfileParser.parse(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'));
const finalStage = dockerfile.getContainingImage(dockerfile.getFROMs().at(-1)!.getRange().start)!.getInstructions();
const imageUser = finalStage.filter((i) => i.getKeyword() === 'USER').at(-1)!.getArgumentsContent()!.split(':')[0]!;
const imageEnv = new Map<string, string>();
for (const i of finalStage) if (i instanceof Env) for (const p of i.getProperties()) imageEnv.set(p.getName(), p.getUnescapedValue() ?? '');
const imageExposes = finalStage.filter((i) => i.getKeyword() === 'EXPOSE').flatMap((i) => i.getArguments().map((a) => Number(a.getValue().replace(/\/tcp$/, ''))));
/** The uids of the users the official Node.js images define. */
const KNOWN_UIDS: Record<string, number> = { root: 0, node: 1000 };

// ---- helpers over the bundle ----

const byKind = (b: Bundle, kind: string): Doc[] => b.resources.filter((r) => r.kind === kind);
const named = (b: Bundle, kind: string, name: string): Doc | undefined => byKind(b, kind).find((r) => r.metadata?.name === name);
const deployment = (b: Bundle): Doc => byKind(b, 'Deployment')[0];
const podSpec = (b: Bundle): Doc => deployment(b).spec.template.spec;
const container = (b: Bundle): Doc => podSpec(b).containers.find((c: Doc) => c.name === 'tollgate');

function containerPort(b: Bundle, port: string | number): number | undefined {
  if (typeof port === 'number') return port;
  return (container(b).ports as Doc[]).find((p) => p.name === port)?.containerPort as number | undefined;
}

/** A Secret's values, decoded. */
function secretValues(secret: Doc): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((secret.data ?? {}) as Record<string, string>)) out[k] = Buffer.from(v, 'base64').toString('utf8');
  return { ...out, ...((secret.stringData ?? {}) as Record<string, string>) };
}

/**
 * The variables the kubelet adds for each Service of the namespace unless enableServiceLinks is
 * false (the Docker links convention): FOO_SERVICE_HOST, FOO_PORT, FOO_PORT_80_TCP… for "foo".
 */
function serviceLinks(b: Bundle): Record<string, string> {
  if (podSpec(b).enableServiceLinks === false) return {};
  const env: Record<string, string> = {};
  for (const service of byKind(b, 'Service')) {
    const name = String(service.metadata.name).toUpperCase().replaceAll('-', '_');
    const ports = service.spec.ports as Doc[];
    env[`${name}_SERVICE_HOST`] = '10.96.0.10';
    env[`${name}_SERVICE_PORT`] = String(ports[0].port);
    env[`${name}_PORT`] = `tcp://10.96.0.10:${ports[0].port}`;
    for (const p of ports) {
      const proto = String(p.protocol ?? 'TCP');
      const prefix = `${name}_PORT_${p.port}_${proto}`;
      Object.assign(env, { [prefix]: `${proto.toLowerCase()}://10.96.0.10:${p.port}`, [`${prefix}_PROTO`]: proto.toLowerCase(), [`${prefix}_PORT`]: String(p.port), [`${prefix}_ADDR`]: '10.96.0.10' });
      if (p.name) env[`${name}_SERVICE_PORT_${String(p.name).toUpperCase().replaceAll('-', '_')}`] = String(p.port);
    }
  }
  return env;
}

/** The container's environment as the kubelet builds it: Service links, then envFrom, then env. */
function containerEnv(b: Bundle): Record<string, string> {
  const env: Record<string, string> = serviceLinks(b);
  for (const from of (container(b).envFrom ?? []) as Doc[]) {
    if (from.secretRef) Object.assign(env, secretValues(named(b, 'Secret', from.secretRef.name) ?? {}));
    if (from.configMapRef) Object.assign(env, named(b, 'ConfigMap', from.configMapRef.name)?.data ?? {});
  }
  for (const e of (container(b).env ?? []) as Doc[]) if (typeof e.value === 'string') env[e.name] = e.value;
  return env;
}

/** Lays the container's ConfigMap and Secret mounts out under a fresh folder, as the kubelet would. */
function layOutMounts(b: Bundle): string {
  const root = tempDir('tollgate-kube-');
  for (const mount of (container(b).volumeMounts ?? []) as Doc[]) {
    const volume = (podSpec(b).volumes as Doc[]).find((v) => v.name === mount.name);
    const source = volume?.configMap
      ? named(b, 'ConfigMap', volume.configMap.name)?.data
      : volume?.secret
        ? secretValues(named(b, 'Secret', volume.secret.secretName) ?? {})
        : {};
    const target = join(root, mount.mountPath);
    mkdirSync(target, { recursive: true });
    for (const [key, text] of Object.entries((source ?? {}) as Record<string, string>)) writeFileSync(join(target, key), text);
  }
  return root;
}

/** The config file the image reads: TOLLGATE_CONFIG from the container's env, else the image's. */
const configPath = (b: Bundle): string => containerEnv(b).TOLLGATE_CONFIG ?? imageEnv.get('TOLLGATE_CONFIG')!;

/** tollgate's own config loader over the mounted files and the container's environment. */
function loadMountedConfig(b: Bundle, env: Record<string, string> = tollgateEnv(b)): { root: string; config: Config } {
  const root = layOutMounts(b);
  return { root, config: loadConfig(join(root, configPath(b)), { env, cwd: '/opt/tollgate' }) };
}

const tollgateEnv = (b: Bundle): Record<string, string> =>
  Object.fromEntries(Object.entries(containerEnv(b)).filter(([name]) => name.startsWith('TOLLGATE_')));

const describeError = (err: unknown): string => (err instanceof ConfigError ? err.message : String(err));

/** A CPU quantity in cores: "2", "1500m", "0.5". */
function cpuCores(quantity: string | number): number {
  const s = String(quantity);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

// ---- the checks ----

function kustomizationProblems(b: Bundle): string[] {
  const listed = [
    ...((b.kustomization.resources ?? []) as string[]),
    ...((b.kustomization.configMapGenerator ?? []) as Doc[]).flatMap((g) => g.files as string[]),
    ...((b.kustomization.secretGenerator ?? []) as Doc[]).flatMap((g) => (g.files ?? []) as string[]),
  ];
  const problems = listed.filter((f) => !b.listing.includes(f)).map((f) => `${f} is listed but missing`);
  for (const f of b.listing) {
    if (/\.ya?ml$/.test(f) && f !== 'kustomization.yaml' && !listed.includes(f)) problems.push(`${f} is not in kustomization.yaml`);
  }
  // The operator names the image once, in images:; a container image it does not match would stay as written.
  const images = ((b.kustomization.images ?? []) as Doc[]).map((i) => i.name as string);
  for (const c of podSpec(b).containers as Doc[]) {
    if (!images.includes(String(c.image).split(':')[0]!)) problems.push(`image ${c.image} is not set by kustomization.yaml images`);
  }
  return problems;
}

const MODELS: Record<string, new (data: Doc) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Namespace': Namespace,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

function schemaErrors(model: new (data: Doc) => { validate(): void }, doc: Doc): string | undefined {
  try {
    new model(doc).validate();
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/**
 * Fields the schema does not know. The Kubernetes OpenAPI schemas leave unknown fields open (the
 * API server refuses them, kubectl's strict validation), so each field is probed: given a value
 * of the wrong type, a known field fails validation and an unknown one does not.
 */
function unknownFields(model: new (data: Doc) => { validate(): void }, doc: Doc): string[] {
  const unknown: string[] = [];
  const walk = (node: Doc, path: (string | number)[]): void => {
    if (Array.isArray(node)) {
      for (const [i, v] of node.entries()) walk(v, [...path, i]);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    for (const [key, value] of Object.entries(node)) {
      const probe = structuredClone(doc);
      let at = probe;
      for (const p of path) at = at[p];
      at[key] = typeof value === 'boolean' ? 'not-a-boolean' : true;
      if (schemaErrors(model, probe) === undefined) unknown.push([...path, key].join('.'));
      else walk(value, [...path, key]);
    }
  };
  walk(doc, []);
  return unknown;
}

function schemaProblems(b: Bundle): string[] {
  const problems: string[] = [];
  for (const doc of b.resources) {
    const id = `${doc.kind}/${doc.metadata?.name}`;
    const model = MODELS[`${doc.apiVersion}/${doc.kind}`];
    if (model === undefined) {
      problems.push(`${id}: no schema for ${doc.apiVersion} ${doc.kind}`);
      continue;
    }
    const errors = schemaErrors(model, doc);
    if (errors !== undefined) problems.push(`${id}: ${errors}`);
    else for (const field of unknownFields(model, doc)) problems.push(`${id}: unknown field ${field}`);
  }
  return problems;
}

function configProblems(b: Bundle): string[] {
  const problems: string[] = [];
  let loaded: { root: string; config: Config };
  try {
    loaded = loadMountedConfig(b);
  } catch (err) {
    return [`${configPath(b)}: ${describeError(err)}`];
  }
  try {
    loadRegistryFile(loaded.config.clients_file, { defaultAudience: loaded.config.tokens.audience });
  } catch (err) {
    problems.push(`registry: ${describeError(err)}`);
  }
  return problems;
}

/** Every file the config names is provided by a mount, at the path the config says. */
function mountProblems(b: Bundle): string[] {
  const { root, config } = loadMountedConfig(b);
  const inContainer = (p: string) => (p.startsWith(root) ? p.slice(root.length) : p);
  const files: [string, string | undefined][] = [
    ['clients_file', config.clients_file],
    ['keys.encryption_key_file', config.keys.encryption_key_file],
    ['keys.previous_encryption_key_file', config.keys.previous_encryption_key_file],
  ];
  const problems: string[] = [];
  for (const [field, path] of files) {
    if (path === undefined) continue;
    try {
      readFileSync(join(root, inContainer(path)));
    } catch {
      problems.push(`${field} ${inContainer(path)} is not provided by any volume mount`);
    }
  }
  return problems;
}

/** Three replicas share state: one store they all reach, and one set of signing keys. */
function fleetProblems(b: Bundle): string[] {
  const { config } = loadMountedConfig(b);
  const problems: string[] = [];
  if (deployment(b).spec.replicas < 2) problems.push('fewer than two replicas');
  if (config.store.kind !== 'postgres' && config.store.kind !== 'redis') problems.push(`store.kind ${config.store.kind} is not shared between replicas`);
  if (config.keys.source !== 'store') problems.push(`keys.source ${config.keys.source}: each replica would make its own key`);
  return problems;
}

function portProblems(b: Bundle): string[] {
  const { config } = loadMountedConfig(b);
  const problems: string[] = [];
  const ports = (container(b).ports as Doc[]).map((p) => p.containerPort as number);
  if (!ports.includes(config.listen.port)) problems.push(`listen.port ${config.listen.port} is not a container port (${ports.join(', ')})`);
  if (!imageExposes.includes(config.listen.port)) problems.push(`listen.port ${config.listen.port} is not the port the image exposes (${imageExposes.join(', ')})`);
  for (const probe of ['startupProbe', 'livenessProbe', 'readinessProbe']) {
    const port = container(b)[probe]?.httpGet?.port;
    if (port !== undefined && containerPort(b, port) !== config.listen.port) problems.push(`${probe} port ${port} is not listen.port ${config.listen.port}`);
  }
  for (const service of byKind(b, 'Service')) {
    for (const p of service.spec.ports as Doc[]) {
      if (containerPort(b, p.targetPort) !== config.listen.port) problems.push(`Service ${service.metadata.name} targetPort ${p.targetPort} is not listen.port`);
    }
  }
  return problems;
}

/** The probes ask tollgate's own routes: /healthz for liveness, /readyz for readiness, each answering 200. */
async function probeProblems(b: Bundle): Promise<string[]> {
  const { app } = await buildTestApp({ clients: readFileSync(join(DIR, 'clients.yaml'), 'utf8') });
  const problems: string[] = [];
  const expected: Record<string, string> = { startupProbe: '/healthz', livenessProbe: '/healthz', readinessProbe: '/readyz' };
  for (const [probe, path] of Object.entries(expected)) {
    const get = container(b)[probe]?.httpGet;
    if (get === undefined) {
      if (probe !== 'startupProbe') problems.push(`no ${probe}`);
      continue;
    }
    if (get.path !== path) problems.push(`${probe} asks ${get.path}, not ${path}`);
    const res = await app.inject({ method: 'GET', url: get.path });
    if (res.statusCode !== 200) problems.push(`${probe} ${get.path} answers ${res.statusCode}`);
  }
  return problems;
}

/** Names the process reads that are not TOLLGATE_ overrides. */
const OTHER_ENV = new Set(['UV_THREADPOOL_SIZE', 'NODE_OPTIONS', 'NODE_EXTRA_CA_CERTS']);

/** Each variable is one tollgate (or Node) reads; each TOLLGATE_ one sets a real config field. */
function envProblems(b: Bundle): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(containerEnv(b))) {
    if (!name.startsWith('TOLLGATE_')) {
      if (!OTHER_ENV.has(name)) problems.push(`${name} is read by neither tollgate nor Node`);
      continue;
    }
    if (name === 'TOLLGATE_CONFIG') continue;
    try {
      const { config } = loadMountedConfig(b, { [name]: value });
      let at: Doc = config;
      for (const key of name.slice('TOLLGATE_'.length).toLowerCase().split('__')) at = at?.[key];
      if (at === undefined) problems.push(`${name} sets no config field`);
    } catch (err) {
      problems.push(`${name}: ${describeError(err)}`);
    }
  }
  return problems;
}

function threadPoolProblems(b: Bundle): string[] {
  const size = containerEnv(b).UV_THREADPOOL_SIZE;
  const limit = container(b).resources?.limits?.cpu;
  if (limit === undefined) return ['no CPU limit'];
  if (size === undefined) return ['no UV_THREADPOOL_SIZE: tollgate would size the pool from the node\'s CPUs, not the limit'];
  return Number(size) === Math.ceil(cpuCores(limit)) ? [] : [`UV_THREADPOOL_SIZE ${size} is not the CPU limit ${limit}`];
}

function securityProblems(b: Bundle): string[] {
  const problems: string[] = [];
  const pod = podSpec(b).securityContext ?? {};
  const c = container(b).securityContext ?? {};
  const uid = c.runAsUser ?? pod.runAsUser;
  if ((c.runAsNonRoot ?? pod.runAsNonRoot) !== true) problems.push('runAsNonRoot is not true');
  if (typeof uid !== 'number') problems.push('no numeric runAsUser: the kubelet cannot check a user name against runAsNonRoot');
  else if (uid === 0) problems.push('runAsUser is root');
  const imageUid = KNOWN_UIDS[imageUser] ?? Number(imageUser);
  if (!(imageUid > 0)) problems.push(`the image's USER ${imageUser} is root or unknown`);
  else if (uid !== imageUid) problems.push(`runAsUser ${uid} is not the image's user ${imageUser} (${imageUid})`);
  if (c.readOnlyRootFilesystem !== true) problems.push('readOnlyRootFilesystem is not true');
  if (c.allowPrivilegeEscalation !== false) problems.push('allowPrivilegeEscalation is not false');
  if (c.privileged === true) problems.push('privileged');
  if (!(c.capabilities?.drop ?? []).includes('ALL')) problems.push('capabilities are not all dropped');
  if ((c.capabilities?.add ?? []).length > 0) problems.push('capabilities are added');
  if ((c.seccompProfile ?? pod.seccompProfile)?.type !== 'RuntimeDefault') problems.push('seccomp profile is not RuntimeDefault');
  for (const kind of ['requests', 'limits']) {
    for (const resource of ['cpu', 'memory']) {
      if (container(b).resources?.[kind]?.[resource] === undefined) problems.push(`no ${resource} ${kind}`);
    }
  }
  return problems;
}

/** The Service drains during preStop; SIGTERM's drain ends before the kubelet's SIGKILL. */
function shutdownProblems(b: Bundle): string[] {
  const preStop = container(b).lifecycle?.preStop;
  const exec = preStop?.exec?.command as string[] | undefined;
  const sleep = preStop?.sleep?.seconds ?? (exec?.[0] === 'sleep' ? Number(exec[1]) : undefined);
  if (!(sleep > 0)) return ['no preStop sleep: the Service may still send requests after SIGTERM'];
  const grace = podSpec(b).terminationGracePeriodSeconds ?? 30;
  const needed = sleep + SHUTDOWN_TIMEOUT_MS / 1000;
  return grace > needed ? [] : [`terminationGracePeriodSeconds ${grace} is not above the preStop sleep and the drain (${needed} s)`];
}

function selectorProblems(b: Bundle): string[] {
  const labels = deployment(b).spec.template.metadata.labels as Record<string, string>;
  const matches = (selector: Record<string, string> | undefined) =>
    selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
  const problems: string[] = [];
  if (!matches(deployment(b).spec.selector.matchLabels)) problems.push('the Deployment selector does not match its pods');
  for (const s of byKind(b, 'Service')) if (!matches(s.spec.selector)) problems.push(`Service ${s.metadata.name} selects no tollgate pod`);
  const pdbs = byKind(b, 'PodDisruptionBudget');
  if (pdbs.length === 0) problems.push('no PodDisruptionBudget');
  for (const p of pdbs) {
    if (!matches(p.spec.selector?.matchLabels)) problems.push(`PodDisruptionBudget ${p.metadata.name} selects no tollgate pod`);
    const replicas = deployment(b).spec.replicas as number;
    const kept = p.spec.minAvailable ?? replicas - (p.spec.maxUnavailable ?? replicas);
    if (!(kept >= 2 && kept < replicas)) problems.push(`PodDisruptionBudget ${p.metadata.name} keeps ${kept} of ${replicas}: below 2, or blocks every drain`);
  }
  return problems;
}

/** The committed key-encryption key must not be usable: one published here would seal nothing. */
function kekProblems(b: Bundle): string[] {
  const { root, config } = loadMountedConfig(b);
  const file = config.keys.encryption_key_file;
  if (file === undefined) return [];
  const text = readFileSync(join(root, file.startsWith(root) ? file.slice(root.length) : file), 'utf8').trim();
  const usable = /^[A-Za-z0-9+/]{43}=$/.test(text) && Buffer.from(text, 'base64').length === 32;
  return usable ? [`${file} holds a usable key: the manifests must ship a placeholder tollgate refuses`] : [];
}

// ---- the tests ----

const bundle = loadBundle(DIR);
/** A copy to break; the original stays as it is. */
const copy = (): Bundle => structuredClone(bundle);

describe('deploy/kubernetes', () => {
  beforeAll(() => {
    expect(byKind(bundle, 'Deployment')).toHaveLength(1);
    expect(container(bundle)).toBeDefined();
  });

  it('lists every manifest in kustomization.yaml, and only files that exist, and sets the image', () => {
    expect(kustomizationProblems(bundle)).toEqual([]);
    const b = copy();
    b.listing.push('extra.yaml');
    b.kustomization.resources.push('gone.yaml');
    container(b).image = 'tollgate-server';
    expect(kustomizationProblems(b)).toEqual([
      'gone.yaml is listed but missing',
      'extra.yaml is not in kustomization.yaml',
      'image tollgate-server is not set by kustomization.yaml images',
    ]);
  });

  it('has manifests valid against the Kubernetes API schemas, with no unknown field', () => {
    expect(bundle.resources.map((r) => r.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'Namespace', 'PodDisruptionBudget', 'Secret', 'Secret', 'Service']);
    expect(schemaProblems(bundle)).toEqual([]);
    const wrongType = copy();
    container(wrongType).ports[0].containerPort = '8080';
    expect(schemaProblems(wrongType).join('\n')).toMatch(/Deployment\/tollgate: .*containerPort must be integer/);
    const typo = copy();
    container(typo).securityContext.readOnlyRootFileSystem = true;
    expect(schemaProblems(typo)).toEqual(['Deployment/tollgate: unknown field spec.template.spec.containers.0.securityContext.readOnlyRootFileSystem']);
    const unknownKind = copy();
    unknownKind.resources.push({ apiVersion: 'v1', kind: 'Servce', metadata: { name: 'x' } });
    expect(schemaProblems(unknownKind)).toEqual(['Servce/x: no schema for v1 Servce']);
  });

  it('mounts a tollgate.yaml and a clients.yaml that tollgate\'s own loaders accept, with the Secret\'s environment', () => {
    expect(configProblems(bundle)).toEqual([]);
    const badConfig = copy();
    const cm = named(badConfig, 'ConfigMap', 'tollgate-config');
    cm.data['tollgate.yaml'] = cm.data['tollgate.yaml'].replace('port: 8080', 'port: eighty');
    expect(configProblems(badConfig).join('\n')).toMatch(/listen\.port: must be a port number/);
    const badRegistry = copy();
    named(badRegistry, 'ConfigMap', 'tollgate-config').data['clients.yaml'] += '    secret: plaintext\n';
    expect(configProblems(badRegistry).join('\n')).toMatch(/^registry: .*plaintext secrets are refused/m);
    const badUrl = copy();
    named(badUrl, 'Secret', 'tollgate-store').stringData.TOLLGATE_STORE__URL = 'mysql://db/tollgate';
    expect(configProblems(badUrl).join('\n')).toMatch(/environment TOLLGATE_STORE__URL/);
  });

  it('provides every file the config names at the path it names', () => {
    expect(mountProblems(bundle)).toEqual([]);
    const b = copy();
    container(b).volumeMounts.find((m: Doc) => m.name === 'kek').mountPath = '/run/secrets/kek';
    expect(mountProblems(b)).toEqual(['keys.encryption_key_file /run/secrets/tollgate/kek is not provided by any volume mount']);
    const moved = copy();
    const cm = named(moved, 'ConfigMap', 'tollgate-config');
    cm.data['tollgate.yaml'] = cm.data['tollgate.yaml'].replace('clients_file: ./clients.yaml', 'clients_file: /etc/tollgate/registry/clients.yaml');
    expect(mountProblems(moved)).toEqual(['clients_file /etc/tollgate/registry/clients.yaml is not provided by any volume mount']);
  });

  it('takes the old key-encryption key from the same Secret while it changes, as docs/guides/kubernetes.md says', () => {
    const b = copy();
    const cm = named(b, 'ConfigMap', 'tollgate-config');
    cm.data['tollgate.yaml'] = cm.data['tollgate.yaml'].replace(
      /(\n\s+)encryption_key_file: (.*)\n/,
      '$1encryption_key_file: $2$1previous_encryption_key_file: /run/secrets/tollgate/previous-kek\n',
    );
    expect(mountProblems(b)).toEqual(['keys.previous_encryption_key_file /run/secrets/tollgate/previous-kek is not provided by any volume mount']);
    named(b, 'Secret', 'tollgate-kek').stringData['previous-kek'] = 'CHANGE-ME';
    expect(mountProblems(b)).toEqual([]);
    expect(readFileSync(join(ROOT, 'docs/guides/kubernetes.md'), 'utf8')).toContain('previous_encryption_key_file: /run/secrets/tollgate/previous-kek');
  });

  it('runs a fleet: several replicas, one shared store, signing keys in the store', () => {
    expect(fleetProblems(bundle)).toEqual([]);
    const b = copy();
    const cm = named(b, 'ConfigMap', 'tollgate-config');
    cm.data['tollgate.yaml'] = cm.data['tollgate.yaml']
      .replace(/keys:\n(\s+#.*\n)*\s+source: store\n\s+encryption_key_file: .*\n/, 'keys:\n')
      .replace(/store:\n\s+kind: postgres/, 'store:\n  kind: sqlite');
    named(b, 'Secret', 'tollgate-store').stringData = {};
    expect(fleetProblems(b)).toEqual(['store.kind sqlite is not shared between replicas', 'keys.source dir: each replica would make its own key']);
  });

  it('listens on the container port, and the probes and the Service reach that port', () => {
    expect(portProblems(bundle)).toEqual([]);
    const elsewhere = copy();
    const cm = named(elsewhere, 'ConfigMap', 'tollgate-config');
    cm.data['tollgate.yaml'] = cm.data['tollgate.yaml'].replace('port: 8080', 'port: 9090');
    container(elsewhere).ports[0].containerPort = 9090;
    expect(portProblems(elsewhere)).toEqual(['listen.port 9090 is not the port the image exposes (8080)']);
    const b = copy();
    container(b).ports[0].containerPort = 9090;
    expect(portProblems(b)).toEqual([
      'listen.port 8080 is not a container port (9090)',
      'startupProbe port http is not listen.port 8080',
      'livenessProbe port http is not listen.port 8080',
      'readinessProbe port http is not listen.port 8080',
      'Service tollgate targetPort http is not listen.port',
    ]);
  });

  it('probes /healthz for liveness and /readyz for readiness, routes that answer 200', async () => {
    expect(await probeProblems(bundle)).toEqual([]);
    const b = copy();
    container(b).livenessProbe.httpGet.path = '/health';
    container(b).readinessProbe.httpGet.path = '/healthz';
    expect(await probeProblems(b)).toEqual(['livenessProbe asks /health, not /healthz', 'livenessProbe /health answers 404', 'readinessProbe asks /healthz, not /readyz']);
  });

  it('sets only environment variables that tollgate or Node reads, each override naming a real field', () => {
    expect(Object.keys(containerEnv(bundle)).sort()).toEqual(['TOLLGATE_STORE__URL', 'UV_THREADPOOL_SIZE']);
    expect(envProblems(bundle)).toEqual([]);
    const b = copy();
    named(b, 'Secret', 'tollgate-store').stringData = { TOLLGATE_STORE__URI: 'postgres://db/tollgate' };
    container(b).env.push({ name: 'UV_THREADPOOL', value: '2' });
    const problems = envProblems(b);
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^TOLLGATE_STORE__URI: .*store/);
    expect(problems[1]).toBe('UV_THREADPOOL is read by neither tollgate nor Node');
    // The Service "tollgate" would give every pod TOLLGATE_PORT, TOLLGATE_SERVICE_HOST…: no
    // config field, so this check names them, while tollgate itself leaves them alone and starts.
    const links = copy();
    delete podSpec(links).enableServiceLinks;
    expect(envProblems(links).map((p) => p.split(/[: ]/)[0]).sort()).toEqual([
      'TOLLGATE_PORT',
      'TOLLGATE_PORT_80_TCP',
      'TOLLGATE_PORT_80_TCP_ADDR',
      'TOLLGATE_PORT_80_TCP_PORT',
      'TOLLGATE_PORT_80_TCP_PROTO',
      'TOLLGATE_SERVICE_HOST',
      'TOLLGATE_SERVICE_PORT',
      'TOLLGATE_SERVICE_PORT_HTTP',
    ]);
    expect(configProblems(links)).toEqual([]);
  });

  it('sizes the thread pool to the CPU limit', () => {
    expect(threadPoolProblems(bundle)).toEqual([]);
    const b = copy();
    container(b).resources.limits.cpu = '4000m';
    expect(threadPoolProblems(b)).toEqual(['UV_THREADPOOL_SIZE 2 is not the CPU limit 4000m']);
    const none = copy();
    container(none).env = [];
    expect(threadPoolProblems(none)).toHaveLength(1);
  });

  it('runs as the image\'s non-root user, read-only, unprivileged, with resources bounded', () => {
    expect(imageUser).toBe('node');
    expect(securityProblems(bundle)).toEqual([]);
    const b = copy();
    const c = container(b);
    podSpec(b).securityContext.runAsUser = 0;
    c.securityContext.readOnlyRootFilesystem = false;
    c.securityContext.allowPrivilegeEscalation = true;
    c.securityContext.capabilities = { add: ['NET_ADMIN'] };
    delete c.securityContext.seccompProfile;
    delete podSpec(b).securityContext.seccompProfile;
    delete c.resources.limits.memory;
    expect(securityProblems(b)).toEqual([
      'runAsUser is root',
      'runAsUser 0 is not the image\'s user node (1000)',
      'readOnlyRootFilesystem is not true',
      'allowPrivilegeEscalation is not false',
      'capabilities are not all dropped',
      'capabilities are added',
      'seccomp profile is not RuntimeDefault',
      'no memory limits',
    ]);
  });

  it('drains before SIGTERM and gives the drain time before SIGKILL', () => {
    expect(shutdownProblems(bundle)).toEqual([]);
    const b = copy();
    podSpec(b).terminationGracePeriodSeconds = 15;
    expect(shutdownProblems(b)).toEqual(['terminationGracePeriodSeconds 15 is not above the preStop sleep and the drain (20 s)']);
    delete container(b).lifecycle;
    expect(shutdownProblems(b)).toHaveLength(1);
  });

  it('selects the tollgate pods from the Service and the PodDisruptionBudget, which keeps two', () => {
    expect(selectorProblems(bundle)).toEqual([]);
    const b = copy();
    byKind(b, 'Service')[0].spec.selector = { app: 'tollgate' };
    byKind(b, 'PodDisruptionBudget')[0].spec.minAvailable = 3;
    expect(selectorProblems(b)).toEqual(['Service tollgate selects no tollgate pod', 'PodDisruptionBudget tollgate keeps 3 of 3: below 2, or blocks every drain']);
  });

  it('ships a key-encryption key placeholder that tollgate cannot use', () => {
    expect(kekProblems(bundle)).toEqual([]);
    const b = copy();
    named(b, 'Secret', 'tollgate-kek').stringData.kek = Buffer.alloc(32, 7).toString('base64');
    expect(kekProblems(b)).toHaveLength(1);
  });

  it('keeps the files the config names in the folder for the CLI, relative to the config as in the pod', () => {
    const config = loadConfig(join(DIR, 'tollgate.yaml'), { env: {} });
    expect(config.clients_file).toBe(join(DIR, 'clients.yaml'));
    expect(dirname(configPath(bundle))).toBe(container(bundle).volumeMounts.find((m: Doc) => m.name === 'config').mountPath);
  });
});

describe.skipIf(!requirePostgres())('deploy/kubernetes as a pod would run it, against a real PostgreSQL', () => {
  const db = `${new URL(POSTGRES_URL || 'postgres://x/none').pathname.slice(1)}_kube`;
  const url = new URL(POSTGRES_URL || 'postgres://x/none');
  url.pathname = `/${db}`;

  beforeAll(async () => {
    const admin = plainSql();
    try {
      await admin.unsafe(`CREATE DATABASE ${db}`);
    } finally {
      await admin.end();
    }
  });

  afterAll(async () => {
    const admin = plainSql();
    try {
      await admin.unsafe(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
    } finally {
      await admin.end();
    }
  });

  /** The mounted files and the container's environment, the store URL and key file pointed at this machine. */
  function podLike(kek: string): { configFile: string; env: Record<string, string> } {
    const b = copy();
    named(b, 'Secret', 'tollgate-store').stringData.TOLLGATE_STORE__URL = url.toString();
    named(b, 'Secret', 'tollgate-kek').stringData.kek = kek;
    const root = layOutMounts(b);
    const config = loadConfig(join(root, configPath(b)), { env: tollgateEnv(b) });
    return {
      configFile: join(root, configPath(b)),
      env: {
        ...containerEnv(b),
        TOLLGATE_CONFIG: join(root, configPath(b)),
        TOLLGATE_KEYS__ENCRYPTION_KEY_FILE: join(root, config.keys.encryption_key_file!),
        // Loopback and a free port here; the pod listens on every interface at 8080.
        TOLLGATE_LISTEN__HOST: '127.0.0.1',
        TOLLGATE_LISTEN__PORT: '0',
      },
    };
  }

  it('refuses to start with the placeholder key-encryption key, in one line naming the file', async () => {
    const { configFile, env } = podLike('CHANGE-ME');
    const start = startServerProcess(configFile, env);
    await expect(start).rejects.toThrow(/exited \(1\) before listening: .*\/run\/secrets\/tollgate\/kek: the key-encryption key is not base64/);
    await expect(start).rejects.not.toThrow(/\n\s+at /);
  });

  it('starts with a real key-encryption key, ready on /readyz, and serves its JWKS', async () => {
    const { configFile, env } = podLike(randomBytes(32).toString('base64'));
    const server = await startServerProcess(configFile, env);
    try {
      expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
      const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: unknown[] };
      expect(jwks.keys).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });
});
