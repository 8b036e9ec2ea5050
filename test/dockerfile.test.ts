import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Copy as CopyInstruction, type Dockerfile, DockerfileParser, Env, type Instruction, JSONInstruction } from 'dockerfile-ast';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/config.js';

// No Docker engine is needed: the Dockerfile is parsed (by dockerfile-ast, the parser behind
// Docker's language server, which knows continuation lines, comments, flags, exec and shell
// forms) and checked for what an operator relies on (non-root, health check, state on a
// volume, no demo registry in the image).

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEMO_REGISTRY = 'config/clients.yaml';

interface Stage {
  image: string;
  name: string | undefined;
  /** The stage's instructions after its FROM. */
  instructions: Instruction[];
}

/** The stages of a Dockerfile, as the parser groups its instructions under each FROM. */
function parseStages(dockerfile: Dockerfile): Stage[] {
  return dockerfile.getFROMs().map((from) => ({
    image: from.getImage() ?? '',
    name: from.getBuildStage() ?? undefined,
    instructions: dockerfile.getContainingImage(from.getRange().start)!.getInstructions().filter((i) => i !== from),
  }));
}

/** An instruction's arguments after its flags, one line however many it was written on. */
const argsOf = (i: Instruction): string => i.getArgumentsContent() ?? '';

/** The line an instruction starts on, counted from 1. */
const lineOf = (i: Instruction): number => i.getRange().start.line + 1;

/** Arguments in exec form (a JSON array) or shell form (split on spaces), flags left out. */
function argList(i: Instruction): string[] {
  const json = i instanceof JSONInstruction ? i.getJSONStrings() : [];
  return json.length > 0 ? json.map((a) => a.getJSONValue()) : i.getArguments().map((a) => a.getValue());
}

interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
  line: number;
  instruction: Instruction;
}

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.getKeyword() === 'COPY' || i.getKeyword() === 'ADD')
    .map((i) => {
      const rest = argList(i);
      const from = i instanceof CopyInstruction ? (i.getFromFlag()?.getValue() ?? undefined) : undefined;
      return { from, sources: rest.slice(0, -1), dest: rest.at(-1)!, line: lineOf(i), instruction: i };
    });
}

/** The directory a stage's relative paths resolve against at the given instruction. */
function workdirAt(stage: Stage, upTo: Instruction | undefined = undefined): string {
  let dir = '/';
  for (const i of stage.instructions) {
    if (i === upTo) break;
    if (i.getKeyword() === 'WORKDIR') dir = posix.resolve(dir, argsOf(i));
  }
  return dir;
}

function resolveDest(stage: Stage, copy: Copy, source: string): string {
  const dest = posix.resolve(workdirAt(stage, copy.instruction), copy.dest);
  // `COPY a b/` and `COPY a b` where b ends up a directory: both name b/a when b ends with /.
  return copy.dest.endsWith('/') ? posix.join(dest, posix.basename(source)) : dest;
}

function envOf(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const i of stage.instructions) {
    if (i instanceof Env) for (const p of i.getProperties()) env.set(p.getName(), p.getUnescapedValue() ?? '');
  }
  return env;
}

const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');

function npmStart(): string {
  return (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.start!;
}
const stages = parseStages(DockerfileParser.parse(dockerfile));
const final = stages.at(-1)!;
const finalOf = (keyword: string) => final.instructions.filter((i) => i.getKeyword() === keyword);
const dockerignore = existsSync(join(ROOT, '.dockerignore'))
  ? readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
  : [];

/** Whether .dockerignore keeps a path out of the build context (exact names and folders only). */
function ignored(path: string): boolean {
  const p = posix.normalize(path).replace(/^\.\//, '').replace(/\/$/, '');
  return dockerignore.some((pattern) => {
    const q = pattern.replace(/^\.?\//, '').replace(/\/$/, '');
    return !q.startsWith('!') && (p === q || p.startsWith(`${q}/`));
  });
}

describe('Dockerfile', () => {
  it('has a build stage and a final stage on a Node LTS slim image', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    const m = /^node:(\d+)(?:[.\d]*)-[a-z]+-slim(?:@sha256:[0-9a-f]{64})?$/.exec(final.image);
    expect(m, `final image ${final.image} is not node:<major>-<distro>-slim`).not.toBeNull();
    const major = Number(m![1]);
    // Even majors are the LTS lines; 22 and later are the ones still supported.
    expect(major % 2).toBe(0);
    expect(major).toBeGreaterThanOrEqual(22);
  });

  it('runs the final stage as a user other than root', () => {
    const users = finalOf('USER');
    expect(users.length).toBeGreaterThan(0);
    const user = argsOf(users.at(-1)!).split(':')[0]!;
    expect(['root', '0', '']).not.toContain(user);
  });

  it('has a health check on /healthz that needs no curl or wget', () => {
    const checks = finalOf('HEALTHCHECK');
    expect(checks).toHaveLength(1);
    const check = argsOf(checks[0]!);
    expect(check).not.toMatch(/^NONE\b/i);
    expect(check).toContain('/healthz');
    expect(check).not.toMatch(/\b(curl|wget)\b/);
    const port = /:'\+\(process\.env\.TOLLGATE_LISTEN__PORT\|\|(\d+)\)|127\.0\.0\.1:(\d+)/.exec(check);
    expect(port, 'the health check names a port').not.toBeNull();
    expect(port![1] ?? port![2]).toBe('8080');
  });

  it('exposes 8080 and keeps its state on a volume', () => {
    const exposed = finalOf('EXPOSE').flatMap(argList);
    expect(exposed.map((p) => p.replace(/\/tcp$/, ''))).toContain('8080');
    const volumes = finalOf('VOLUME').flatMap(argList);
    expect(volumes).toContain('/var/lib/tollgate');
  });

  it('runs with the allocator settings npm start uses', () => {
    const env = envOf(final);
    expect(env.get('MALLOC_ARENA_MAX')).toBe('2');
    expect(env.get('MALLOC_MMAP_THRESHOLD_')).toBe('131072');
    expect(npmStart()).toMatch(/^MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 node /);
  });

  it('starts the CLI with serve by default, with the Node flags npm start uses', () => {
    // The V8 flags size the heap (see docs/internals/performance.md); the two ways to run must agree.
    const flags = /^(?:[A-Z_]+=\S+ )*node ((?:--\S+ )*)dist\/cli\/tollgate\.cjs serve$/.exec(npmStart());
    expect(flags, 'npm start runs node [flags] dist/cli/tollgate.cjs serve').not.toBeNull();
    const nodeFlags = flags![1]!.trim().split(' ');
    expect(nodeFlags).toContain('--max-semi-space-size=16');
    expect(nodeFlags).toContain('--heap-growing-percent=30');
    expect(argList(finalOf('ENTRYPOINT').at(-1)!)).toEqual(['node', ...nodeFlags, 'dist/cli/tollgate.cjs']);
    expect(argList(finalOf('CMD').at(-1)!)).toEqual(['serve']);
  });

  it('does not put the demo registry or the source tree in the final image', () => {
    for (const c of copies(final)) {
      for (const source of c.sources) {
        const s = posix.normalize(source).replace(/\/$/, '');
        expect(s, `line ${c.line}`).not.toMatch(/(^|\/)clients\.ya?ml$/);
        if (c.from === undefined) {
          // From the build context: nothing wholesale, no sources, no config folder.
          expect(['.', '*', 'src', 'config', 'test'], `line ${c.line} copies ${source}`).not.toContain(s);
        } else {
          // From another stage: not that stage's whole working folder.
          const stage = stages.find((st) => st.name === c.from);
          expect(stage, `line ${c.line}: no stage ${c.from}`).toBeDefined();
          expect(posix.resolve(workdirAt(stage!), s), `line ${c.line} copies ${source}`).not.toBe(workdirAt(stage!));
          expect(s).not.toBe('/');
        }
      }
    }
    expect(ignored(DEMO_REGISTRY), '.dockerignore keeps config/clients.yaml out of the build context').toBe(true);
    expect(ignored('data')).toBe(true);
    expect(ignored('node_modules')).toBe(true);
  });

  it('copies only files that exist in the repository or that the build stage produces', () => {
    const buildOutDir = (JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as { compilerOptions: { outDir: string } })
      .compilerOptions.outDir;
    for (const [index, stage] of stages.entries()) {
      for (const c of copies(stage)) {
        if (c.from === undefined) {
          for (const source of c.sources) {
            expect(existsSync(join(ROOT, source)), `line ${c.line}: ${source} is not in the repository`).toBe(true);
            expect(ignored(source), `line ${c.line}: ${source} is excluded by .dockerignore`).toBe(false);
          }
          continue;
        }
        const producer = stages.slice(0, index).find((st) => st.name === c.from);
        expect(producer, `line ${c.line}: --from=${c.from} is not an earlier stage`).toBeDefined();
        const dir = workdirAt(producer!);
        const runs = producer!.instructions.filter((i) => i.getKeyword() === 'RUN').map(argsOf).join('\n');
        const made = new Set<string>();
        for (const pc of copies(producer!)) for (const s of pc.sources) made.add(resolveDest(producer!, pc, s));
        if (/\bnpm ci\b/.test(runs)) made.add(posix.join(dir, 'node_modules'));
        if (/\bnpm run build\b/.test(runs)) made.add(posix.resolve(dir, buildOutDir));
        for (const source of c.sources) {
          const abs = posix.resolve(dir, source).replace(/\/$/, '');
          expect(made.has(abs), `line ${c.line}: ${source} is not made by stage ${c.from} (made: ${[...made].join(', ')})`).toBe(true);
        }
      }
    }
  });

  it('ships deploy/docker/tollgate.yaml as the config TOLLGATE_CONFIG names', () => {
    const target = envOf(final).get('TOLLGATE_CONFIG');
    expect(target).toBe('/etc/tollgate/tollgate.yaml');
    const shipped = copies(final).filter((c) => c.from === undefined && c.sources.includes('deploy/docker/tollgate.yaml'));
    expect(shipped).toHaveLength(1);
    expect(resolveDest(final, shipped[0]!, 'deploy/docker/tollgate.yaml')).toBe(target);
  });
});

describe('deploy/docker/tollgate.yaml', () => {
  const file = join(ROOT, 'deploy/docker/tollgate.yaml');
  const volumes = finalOf('VOLUME').flatMap(argList);
  const onVolume = (path: string) => volumes.some((v) => path === v || path.startsWith(`${v}/`));

  it('loads with the server own loader and puts state on the volume', () => {
    const config = loadConfig(file, { env: {} });
    expect(config.listen).toEqual({ host: '0.0.0.0', port: 8080 });
    expect(config.clients_file).toBe('/etc/tollgate/registry/clients.yaml');
    expect(isAbsolute(config.keys.dir) && onVolume(config.keys.dir)).toBe(true);
    expect(config.store.kind).toBe('sqlite');
    expect(onVolume(config.store.path)).toBe(true);
  });

  it('takes the issuer and a read-only key folder from the environment', () => {
    const config = loadConfig(file, {
      env: { TOLLGATE_ISSUER: 'https://auth.example.com', TOLLGATE_KEYS__DIR: '/run/secrets/tollgate-keys' },
    });
    expect(config.issuer).toBe('https://auth.example.com');
    expect(config.keys.dir).toBe('/run/secrets/tollgate-keys');
  });
});

/** Shell commands of a ```sh block: comments dropped, continuation lines joined. */
function shellCommands(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

/** `-v SOURCE:TARGET[:ro]` mounts of a docker run command, and its --user, if any. */
function dockerRun(command: string): { mounts: { source: string; target: string }[]; user: string | undefined } {
  const words = command.match(/"[^"]*"|\S+/g)!.map((w) => w.replace(/^"|"$/g, ''));
  const mounts: { source: string; target: string }[] = [];
  let user: string | undefined;
  words.forEach((w, i) => {
    const next = words[i + 1] ?? '';
    if (w === '-v' || w === '--volume') {
      const [source, target] = next.split(':');
      mounts.push({ source: source!, target: target! });
    }
    if (w === '--user' || w === '-u') user = next;
    if (w.startsWith('--user=')) user = w.slice('--user='.length);
  });
  return { mounts, user };
}

describe('the registry in the image and in the Docker guide\'s flow', () => {
  const registryDir = dirname(loadConfig(join(ROOT, 'deploy/docker/tollgate.yaml'), { env: {} }).clients_file);
  const imageUser = argsOf(finalOf('USER').at(-1)!).split(':')[0]!;
  const runs = finalOf('RUN').map(argsOf);

  it('creates the registry folder owned by the user the server runs as, so a new named volume there is that user\'s', () => {
    expect(runs.some((r) => new RegExp(`\\bmkdir -p\\b[^&;]*\\s${registryDir}(\\s|$)`).test(r)), `mkdir -p ${registryDir}`).toBe(true);
    expect(
      runs.some((r) => new RegExp(`\\bchown (-R )?${imageUser}(:${imageUser})?\\b[^&;]*\\s${registryDir}(\\s|$)`).test(r)),
      `chown ${imageUser} ${registryDir}`,
    ).toBe(true);
    // Not a VOLUME: a one-off `client add` without a mount would write into an anonymous volume and lose the file.
    expect(finalOf('VOLUME').flatMap(argList)).not.toContain(registryDir);
  });

  it('writes the registry in the guide\'s flow as the user the server reads it as, whatever the caller\'s uid (no EACCES)', () => {
    const guide = readFileSync(join(ROOT, 'docs/guides/docker.md'), 'utf8');
    const block = /```sh\n([\s\S]*?)```/.exec(guide)![1]!;
    const dockerRuns = shellCommands(block).filter((c) => c.startsWith('docker run '));
    const withRegistry = dockerRuns.map(dockerRun).filter((r) => r.mounts.some((m) => m.target === registryDir));
    // One that writes it (the CLI) and the server that reads it.
    expect(withRegistry.length).toBeGreaterThanOrEqual(2);
    const sources = new Set(withRegistry.map((r) => r.mounts.find((m) => m.target === registryDir)!.source));
    expect(sources.size).toBe(1);
    const [source] = sources;
    // A named volume, which takes its ownership from the image: a host folder belongs to the caller's uid.
    expect(source, 'the registry is a named volume').toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/);
    // Every container that touches it runs as the image's user: a caller's uid would write a file the server cannot read.
    for (const r of withRegistry) expect(r.user ?? imageUser).toBe(imageUser);
  });
});
