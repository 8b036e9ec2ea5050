import { ConfigError, type Problem } from '../config-error.js';
import { formatPath, readYamlFile, zodProblems, type YamlFile } from '../yaml-file.js';
import { PLAINTEXT_FIELDS, registrySchema, toClient } from './client-schema.js';
import { StaticClientRegistry, type Client } from './registry.js';

export interface RegistryOptions {
  /** `tokens.audience` from the config: what a client without `audiences` is given. */
  defaultAudience: readonly string[];
}

/** Reads and validates clients.yaml. Throws ConfigError listing every problem in the file. */
export function loadRegistryFile(file: string, options: RegistryOptions, shownAs = file): StaticClientRegistry {
  return new StaticClientRegistry(validateRegistry(readYamlFile(file, shownAs), options));
}

/** Validates a parsed registry document; used by the loader and by the CLI before it writes. */
export function validateRegistry(source: YamlFile, options: RegistryOptions): Client[] {
  const value = source.value ?? {};
  const result = registrySchema.safeParse(value);
  if (!result.success) {
    throw new ConfigError(
      zodProblems(result.error, source).map((p) =>
        p.message === 'unknown field' && PLAINTEXT_FIELDS.has(p.path.split('.').pop() ?? '')
          ? { ...p, message: 'plaintext secrets are refused: store an argon2id hash under secrets[].hash (tollgate hash-secret)' }
          : p,
      ),
    );
  }
  const problems: Problem[] = [];
  const at = (path: (string | number)[], message: string): void => {
    problems.push({ file: source.file, path: formatPath(path), line: source.lineOf(path), message });
  };
  const seen = new Map<string, number>();
  result.data.forEach((entry, i) => {
    const first = seen.get(entry.client_id);
    if (first !== undefined) at(['clients', i, 'client_id'], `duplicate client_id ${JSON.stringify(entry.client_id)} (also clients[${first}])`);
    else seen.set(entry.client_id, i);
    if (entry.audiences.length === 0 && options.defaultAudience.length === 0) {
      // RFC 9068 §2.2 makes aud REQUIRED; fail here rather than mint tokens no resource server should accept.
      at(['clients', i], 'has no audiences and tokens.audience is empty: its tokens would have no aud claim');
    }
  });
  if (problems.length > 0) throw new ConfigError(problems);
  return result.data.map(toClient);
}
