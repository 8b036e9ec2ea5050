import { createHash } from 'node:crypto';
import { accessSync, chmodSync, chownSync, constants, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../shared/config-error.js';
import { permissionProblem } from '../shared/file-access.js';

/**
 * The key files of a folder: `*.pem`, sorted. Names starting with a dot are not keys: the
 * `..data` and `..2026_…` entries of a Kubernetes Secret volume, tollgate's own temporary files.
 */
export function listKeyFiles(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.pem') && !f.startsWith('.'))
      .sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ConfigError.single(dir, `cannot read the key directory: ${permissionProblem(err, 'read') ?? (err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Names, mtimes and a digest of the content of the key files: changes when a key is added,
 * removed, replaced or rewritten, including when a Kubernetes Secret volume swaps its `..data`
 * link to a new folder while every name stays (the links then lead to other files). A link to a
 * missing file, or a file removed since the listing, is marked as such.
 */
export function directorySignature(dir: string): string {
  return listKeyFiles(dir)
    .map((f) => {
      try {
        const file = join(dir, f);
        const st = statSync(file);
        const digest = createHash('sha256').update(readFileSync(file)).digest('base64url');
        return `${f}:${st.mtimeMs}:${digest}`;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return `${f}:missing`;
        throw ConfigError.single(join(dir, f), `cannot read: ${permissionProblem(err, 'read') ?? (err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
    })
    .join('|');
}

/** True when dir is (the mount of) a Kubernetes Secret or ConfigMap volume: it holds `..data`. */
export function isSecretVolume(dir: string): boolean {
  try {
    lstatSync(join(dir, '..data'));
    return true;
  } catch {
    return false;
  }
}

/**
 * Why tollgate may not write into the key folder, or undefined when it may (a folder that does
 * not exist yet may be made). A Kubernetes Secret volume is never written into, even where the
 * process could (as root): the kubelet owns it, and the Secret is where keys are changed.
 */
export function keyDirWriteProblem(dir: string): string | undefined {
  if (isSecretVolume(dir)) return 'it is a Kubernetes Secret volume (it holds ..data), which tollgate never writes into; change the Secret instead';
  try {
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Missing: made when written. Not a folder: loading it says so.
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EROFS') return 'it is on a read-only file system';
    return permissionProblem(err, 'write') ?? code ?? (err as Error).message;
  }
}

/** Throws ConfigError when keyDirWriteProblem finds one: `dir: cannot <action> the key directory: <why>`. */
export function refuseReadOnly(dir: string, action: string): void {
  const problem = keyDirWriteProblem(dir);
  if (problem !== undefined) throw ConfigError.single(dir, `cannot ${action} the key directory: ${problem}`);
}

export interface WriteKeyOptions {
  /** Keep this file's owner (when running as root) and mtime: the file being replaced. */
  replacing?: { uid: number; gid: number; atime: Date; mtime: Date };
  /** Refuse to replace an existing file of that name. */
  exclusive?: boolean;
}

/**
 * Writes text as dir/name, mode 0600, under a temporary name renamed into place, so that no
 * reader ever sees half a key. Makes dir (mode 0700) when missing. Throws the fs error.
 */
export function writeKeyFile(dir: string, name: string, text: string, options: WriteKeyOptions = {}): void {
  const file = join(dir, name);
  const tmp = join(dir, `.${name}.${process.pid}.tmp`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    chmodSync(tmp, 0o600);
    const was = options.replacing;
    if (was !== undefined) {
      // Root rewriting a file of the server's user gives it back, or the server could not read it.
      if (process.getuid?.() === 0) chownSync(tmp, was.uid, was.gid);
      // An older tollgate, reading times from mtimes, still sees the same ones.
      utimesSync(tmp, was.atime, was.mtime);
    }
    if (options.exclusive) {
      // A hard link fails when the name is taken, where a rename would replace it.
      linkSync(tmp, file);
      unlinkSync(tmp);
    } else renameSync(tmp, file);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // Never written, or already renamed.
    }
    throw err;
  }
}
