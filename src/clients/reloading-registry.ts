import { unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';
import { ConfigError } from '../shared/config-error.js';
import type { Client, ClientRegistry, TrustedIssuer } from './registry.js';
import { loadRegistryFile, type RegistryOptions } from './yaml-registry.js';

export interface ReloadOptions extends RegistryOptions {
  /** `allow_empty_registry`: take a reload that leaves no client where there were some. */
  allowEmpty?: boolean;
}

/** How often the registry file is checked for changes (a stat, not a read). */
const POLL_MS = 1000;

/**
 * The registry file, re-read when it changes. A new version is validated whole and swapped in
 * at once; a broken one is refused and the last good registry keeps serving.
 */
export class ReloadingClientRegistry implements ClientRegistry {
  #current: ClientRegistry;
  #watching = false;
  readonly #listeners: (() => void)[] = [];
  readonly #rejectListeners: (() => void)[] = [];

  constructor(
    readonly file: string,
    private readonly options: ReloadOptions,
    private readonly logger: Logger,
  ) {
    this.#current = loadRegistryFile(file, options);
    if (this.#current.all().length === 0) {
      logger.warn({ event: 'registry.empty', file }, 'the registry has no clients: every client authentication fails until one is added');
    }
  }

  get(clientId: string): Client | undefined {
    return this.#current.get(clientId);
  }

  all(): readonly Client[] {
    return this.#current.all();
  }

  loadedAt(): number {
    return this.#current.loadedAt();
  }

  bySpiffeId(spiffeId: string): Client | undefined {
    return this.#current.bySpiffeId(spiffeId);
  }

  trustedIssuer(name: string): TrustedIssuer | undefined {
    return this.#current.trustedIssuer(name);
  }

  trustedIssuers(): readonly TrustedIssuer[] {
    return this.#current.trustedIssuers();
  }

  /** Re-reads the file now; returns whether the new version was taken. */
  reload(): boolean {
    let next: ClientRegistry;
    try {
      next = loadRegistryFile(this.file, this.options);
      const had = this.#current.all().length;
      if (next.all().length === 0 && had > 0 && !this.options.allowEmpty) {
        throw ConfigError.single(this.file, `holds no clients where the running registry has ${had}: refused (allow_empty_registry is false); disable clients rather than remove the last one`);
      }
    } catch (err) {
      // Whatever a reload meets, the server keeps running on the last good registry.
      const problems = err instanceof ConfigError ? err.message.split('\n') : [`${this.file}: cannot load: ${err instanceof Error ? err.message : String(err)}`];
      this.logger.error({ event: 'registry.rejected', file: this.file, problems }, 'registry change refused; the last good registry stays in use');
      for (const listener of this.#rejectListeners) listener();
      return false;
    }
    const summary = diff(this.#current, next);
    this.#current = next;
    for (const listener of this.#listeners) listener();
    this.logger.info(
      { event: 'registry.reloaded', file: this.file, clients: next.all().length, trusted_issuers: next.trustedIssuers().length, ...summary },
      'registry reloaded',
    );
    return true;
  }

  /** Calls `listener` after every accepted reload. */
  onReload(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /** Calls `listener` after every refused reload (counted in tollgate_reloads_rejected_total). */
  onReject(listener: () => void): void {
    this.#rejectListeners.push(listener);
  }

  /**
   * Checks the file for changes every second. Polling (a stat) rather than inotify: it sees
   * atomic renames, network filesystems and bind mounts, where watch events go missing.
   */
  watch(): void {
    if (this.#watching) return;
    this.#watching = true;
    watchFile(this.file, { interval: POLL_MS, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.reload();
    });
  }

  close(): void {
    if (this.#watching) unwatchFile(this.file);
    this.#watching = false;
  }
}

/** Which client_ids a reload added, removed or changed; never what changed inside them. */
function diff(before: ClientRegistry, after: ClientRegistry): { added: string[]; removed: string[]; changed: string[] } {
  const fingerprint = (c: Client) => JSON.stringify({ ...c, allowedIps: c.allowedIps?.rules });
  const old = new Map(before.all().map((c) => [c.clientId, fingerprint(c)]));
  const added: string[] = [];
  const changed: string[] = [];
  for (const c of after.all()) {
    const was = old.get(c.clientId);
    if (was === undefined) added.push(c.clientId);
    else if (was !== fingerprint(c)) changed.push(c.clientId);
    old.delete(c.clientId);
  }
  return { added, removed: [...old.keys()], changed };
}
