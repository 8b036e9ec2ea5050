/**
 * The reason to give when the process may not read or write a file or folder it was told to
 * use: "permission denied", the user it runs as, and what to do. Undefined for any other error.
 *
 * An operator meets this most often in a container, where the files were written by their own
 * uid and the server runs as another (the image's uid 1000): saying which uid is refused is
 * what turns an EACCES into a one-line fix.
 */
export function permissionProblem(err: unknown, action: 'read' | 'write'): string | undefined {
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
  if (code !== 'EACCES' && code !== 'EPERM') return undefined;
  const able = action === 'read' ? 'readable' : 'writable';
  return `permission denied: tollgate runs as ${processUser()} and cannot ${action} it; make it (and the folders above it) ${able} by that user, with chown or chmod (with Docker, see docs/guides/docker.md)`;
}

/** `uid 1000 (gid 1000)`, or a plain description where there are no uids (Windows). */
function processUser(): string {
  const uid = process.getuid?.();
  const gid = process.getgid?.();
  return uid === undefined ? 'the current user' : `uid ${uid} (gid ${gid})`;
}
