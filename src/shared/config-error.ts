/** One thing wrong with a file an operator wrote: where it is and what is wrong. */
export interface Problem {
  /** The file, as the operator named it (or "environment" for an override). */
  file: string;
  /** Dotted path inside the document, e.g. `clients[2].secrets[0].hash`; empty for the whole file. */
  path: string;
  /** Line in the file, 1-based, when known. */
  line?: number;
  message: string;
}

export function formatProblem(p: Problem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}`;
  return p.path === '' ? `${where}: ${p.message}` : `${where}: ${p.path}: ${p.message}`;
}

/**
 * A configuration or registry file that cannot be used. Raised at start-up, by `config check`
 * and by the CLI; never caused by a request, so it is not an OAuth error.
 */
export class ConfigError extends Error {
  readonly code = 'ERR_TOLLGATE_CONFIG';
  readonly problems: readonly Problem[];

  constructor(problems: readonly Problem[]) {
    super(problems.map(formatProblem).join('\n'));
    this.name = 'ConfigError';
    this.problems = problems;
  }

  static single(file: string, message: string, path = ''): ConfigError {
    return new ConfigError([{ file, path, message }]);
  }
}
