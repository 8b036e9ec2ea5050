import { ConfigError, type Problem } from '../shared/config-error.js';
import { formatPath, plainMessages, readYamlFile, zodProblems, type YamlFile } from '../shared/yaml-file.js';
import { PLAINTEXT_FIELDS, registrySchema, TLS_SUBJECT_FIELDS } from './client-schema.js';
import { federationProblems } from './federation-schema.js';
import { SECRET_AUTH_METHODS, StaticClientRegistry, type Client, type TrustedIssuer } from './registry.js';

export interface RegistryOptions {
  /** `tokens.audience` from the config: what a client without `audiences` is given. */
  defaultAudience: readonly string[];
}

/** Reads and validates clients.yaml. Throws ConfigError listing every problem in the file. */
export function loadRegistryFile(file: string, options: RegistryOptions, shownAs = file): StaticClientRegistry {
  const { clients, trustedIssuers } = validateRegistryDocument(readYamlFile(file, shownAs), options);
  return new StaticClientRegistry(clients, trustedIssuers);
}

/** The clients of a parsed registry document; see validateRegistryDocument. */
export function validateRegistry(source: YamlFile, options: RegistryOptions): Client[] {
  return validateRegistryDocument(source, options).clients;
}

/**
 * Validates a parsed registry document; used by the loader and by the CLI before it writes.
 * Every problem in the file is reported at once: field by field, and the rules that relate
 * fields or entries, even where some fields are broken.
 */
export function validateRegistryDocument(source: YamlFile, options: RegistryOptions): { clients: Client[]; trustedIssuers: TrustedIssuer[] } {
  const result = registrySchema.safeParse(source.value ?? {}, { error: plainMessages });
  const problems: Problem[] = result.success
    ? []
    : zodProblems(result.error, source, registrySchema).map((p) =>
        p.message.startsWith('unknown field') && PLAINTEXT_FIELDS.has(p.path.split('.').pop() ?? '')
          ? { ...p, message: 'plaintext secrets are refused: store an argon2id hash under secrets[].hash (tollgate hash-secret)' }
          : p,
      );
  problems.push(...crossFieldProblems(source, options));
  if (problems.length > 0 || !result.success) {
    throw new ConfigError(problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0)));
  }
  return result.data;
}

/** Rules between fields and between entries, checked on the raw document so that they run even beside field errors. */
function crossFieldProblems(source: YamlFile, options: RegistryOptions): Problem[] {
  const problems: Problem[] = [];
  const at = (path: (string | number)[], message: string): void => {
    problems.push({ file: source.file, path: formatPath(path), line: source.lineOf(path), message });
  };
  const doc = source.value as { clients?: unknown; trusted_issuers?: unknown } | null;
  if (doc !== null && typeof doc === 'object') federationProblems(doc, at);
  const raw = doc?.clients;
  if (!Array.isArray(raw)) return problems;
  const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined);
  const seen = new Map<string, number>();
  raw.forEach((entry: unknown, i) => {
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) return;
    const c = entry as Record<string, unknown>;
    if (typeof c.client_id === 'string') {
      const first = seen.get(c.client_id);
      if (first !== undefined) at(['clients', i, 'client_id'], `duplicate client_id ${JSON.stringify(c.client_id)} (also clients[${first}])`);
      else seen.set(c.client_id, i);
    }
    const scopes = new Set(strings(c.scopes) ?? []);
    (Array.isArray(c.default_scopes) ? c.default_scopes : []).forEach((s: unknown, j) => {
      if (typeof s === 'string' && !scopes.has(s)) at(['clients', i, 'default_scopes', j], `${JSON.stringify(s)} is not in scopes`);
    });
    const methods = strings(c.auth_methods) ?? [...SECRET_AUTH_METHODS];
    const secretMethods = methods.filter((m) => (SECRET_AUTH_METHODS as readonly string[]).includes(m));
    // An entry with a plaintext secret already has its problem named; "needs a secret" would only confuse.
    const plaintext = Object.keys(c).some((k) => PLAINTEXT_FIELDS.has(k));
    if (!plaintext && secretMethods.length > 0 && (c.secrets === undefined || (Array.isArray(c.secrets) && c.secrets.length === 0))) {
      at(['clients', i, 'secrets'], `${secretMethods.join(', ')} needs at least one secret`);
    }
    const has = (field: string) => c[field] !== undefined;
    if (methods.includes('private_key_jwt') && has('jwks') === has('jwks_uri')) {
      at(['clients', i], 'private_key_jwt needs exactly one of jwks or jwks_uri');
    }
    if (methods.includes('self_signed_tls_client_auth') && !has('jwks')) {
      at(['clients', i], 'self_signed_tls_client_auth needs jwks: the public key of its certificate');
    }
    const subjects = TLS_SUBJECT_FIELDS.filter(([field]) => has(field)).length;
    if (methods.includes('tls_client_auth') && subjects !== 1) {
      at(['clients', i], 'tls_client_auth needs exactly one of tls_client_auth_subject_dn or tls_client_auth_san_dns/_uri/_ip/_email');
    }
    const noAudiences = c.audiences === undefined || (Array.isArray(c.audiences) && c.audiences.length === 0);
    if (noAudiences && options.defaultAudience.length === 0) {
      // RFC 9068 §2.2 makes aud REQUIRED; fail here rather than mint tokens no resource server should accept.
      at(['clients', i], 'has no audiences and tokens.audience is empty: its tokens would have no aud claim');
    }
  });
  return problems;
}
