import { renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Document, isAlias, isCollection, isMap, isNode, isSeq, visit, type YAMLMap, YAMLSeq } from 'yaml';
import { ConfigError } from '../shared/config-error.js';
import { parseYamlText, readYamlFile } from '../shared/yaml-file.js';
import type { Client, TrustedIssuer } from './registry.js';
import { keepUntouchedEntries, registrySource, type RegistrySource } from './registry-text.js';
import { validateRegistry, validateRegistryDocument, type RegistryOptions } from './yaml-registry.js';

/** What happens to one existing secret in a rotation: stays as it is, goes, or gets this expires_at. */
export type SecretEdit = 'keep' | 'remove' | { expiresAt: string };

/**
 * clients.yaml opened for editing by the CLI. Edits go through the YAML document, so comments,
 * key order and formatting of everything else stay as the operator wrote them; the result is
 * validated whole before it replaces the file.
 */
export class RegistryFile {
  private constructor(
    readonly file: string,
    private readonly doc: Document,
    private readonly mode: number,
    private readonly opened: readonly Client[],
    private readonly source?: RegistrySource,
    private readonly issuers: readonly TrustedIssuer[] = [],
  ) {}

  /** Entries `update` wrote to: rendered anew even where they mean what they meant. */
  private readonly touched = new Set<YAMLMap>();

  /** Opens the file; with `createIfMissing`, a missing file starts as an empty registry. */
  static open(file: string, options: RegistryOptions & { createIfMissing?: boolean }): RegistryFile {
    let mode = 0o600;
    try {
      mode = statSync(file).mode & 0o777;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && options.createIfMissing) {
        return new RegistryFile(file, new Document({ clients: [] }), mode, []);
      }
    }
    const source = readYamlFile(file);
    // Refuse to edit a registry that is already broken: the edit would hide the problem.
    const { clients, trustedIssuers } = validateRegistryDocument(source, options);
    return new RegistryFile(file, source.doc, mode, clients, registrySource(source.doc, source.text), trustedIssuers);
  }

  /** The trusted issuers (CONTRACT §6) the file held when opened. */
  trustedIssuers(): readonly TrustedIssuer[] {
    return this.issuers;
  }

  /** How many clients the file held when opened. */
  count(): number {
    return this.opened.length;
  }

  has(clientId: string): boolean {
    return this.indexOf(clientId) >= 0;
  }

  /** The client as the file held it when opened (validated, times in ms), before any edit. */
  client(clientId: string): Client | undefined {
    return this.opened.find((c) => c.clientId === clientId);
  }

  add(entry: Record<string, unknown>): void {
    let clients = this.doc.get('clients', true);
    if (!isSeq(clients)) {
      clients = new YAMLSeq();
      this.doc.set('clients', clients);
    }
    const seq = clients as YAMLSeq;
    // `clients: []` is a flow sequence; entries read better as a block list.
    seq.flow = false;
    seq.items.push(this.doc.createNode(entry));
  }

  /** The client's entry as written in the file (no defaults filled in), before any edit. */
  entryValue(clientId: string): Record<string, unknown> {
    return this.entry(clientId).toJS(this.doc, { maxAliasCount: -1 }) as Record<string, unknown>;
  }

  /**
   * Sets fields of the client's entry (`undefined` removes one). A replaced value keeps the
   * comments around it and the style it was written in: `scopes: [a, b]` stays a flow list.
   */
  update(clientId: string, fields: Readonly<Record<string, unknown>>): void {
    const entry = this.entry(clientId);
    this.touched.add(entry);
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) {
        entry.delete(key);
        continue;
      }
      const old: unknown = entry.get(key, true);
      this.refuseSharedAnchors(clientId, old);
      const node = this.doc.createNode(value);
      if (isCollection(node)) node.flow = isCollection(old) ? (old.flow ?? false) : true;
      if (isNode(old) && isNode(node)) {
        node.comment = old.comment;
        node.commentBefore = old.commentBefore;
      }
      entry.set(key, node);
    }
  }

  setDisabled(clientId: string, disabled: boolean): void {
    const entry = this.entry(clientId);
    if (disabled) entry.set('disabled', true);
    else entry.delete('disabled');
  }

  /**
   * Applies `edits` to the client's secrets (one per existing secret, in file order) and appends
   * a new secret with `hash`. The secrets that stay keep their comments; the list becomes a block
   * list of block mappings, the way `client add` writes it.
   */
  rotateSecrets(clientId: string, edits: readonly SecretEdit[], hash: string): void {
    const entry = this.entry(clientId);
    const existing: unknown = entry.get('secrets', true);
    const seq = isSeq(existing) ? existing : new YAMLSeq();
    if (seq !== existing) entry.set('secrets', seq);
    if (edits.length !== seq.items.length) throw new TypeError(`${edits.length} edits for ${seq.items.length} secrets`);
    // Backwards, so that removing an item does not shift the ones still to edit.
    for (let i = edits.length - 1; i >= 0; i--) {
      const edit = edits[i]!;
      if (edit === 'remove') seq.items.splice(i, 1);
      else if (edit !== 'keep') (seq.items[i] as YAMLMap).set('expires_at', edit.expiresAt);
    }
    // A one-line `[{ hash: "…" }]` would grow into one very long line; a block list reads better.
    seq.flow = false;
    for (const item of seq.items) if (isMap(item)) item.flow = false;
    seq.items.push(this.doc.createNode({ hash }));
  }

  remove(clientId: string): void {
    this.refuseSharedAnchors(clientId, this.entry(clientId));
    (this.doc.get('clients', true) as YAMLSeq).items.splice(this.require(clientId), 1);
  }

  /**
   * Refuses to drop a node whose anchor aliases elsewhere still use: they would be left
   * pointing at nothing, or, if the anchor moved to the new value, change other clients too.
   */
  private refuseSharedAnchors(clientId: string, node: unknown): void {
    if (!isNode(node)) return;
    const anchors = new Set<string>();
    visit(node, { Node: (_key, n) => void (n.anchor !== undefined && anchors.add(n.anchor)) });
    if (anchors.size === 0) return;
    let used: string | undefined;
    visit(this.doc, {
      Node: (_key, n) => {
        if (n === node) return visit.SKIP;
        if (isAlias(n) && anchors.has(n.source)) {
          used = n.source;
          return visit.BREAK;
        }
        return undefined;
      },
    });
    if (used !== undefined) {
      throw ConfigError.single(this.file, `client ${JSON.stringify(clientId)} holds the anchor &${used} that other entries use as *${used}: give them their own value first (client update)`);
    }
  }

  /** Validates the edited registry and atomically replaces the file with it. */
  save(options: RegistryOptions): Client[] {
    // yaml's defaults would refold every long string (an argon2id hash split by a backslash
    // line break) and pad every flow list (`[a, b]` -> `[ a, b ]`): entries the edit did not
    // touch would change. Keep long lines whole and flow collections as usually written.
    let rendered: string;
    try {
      rendered = this.doc.toString({ lineWidth: 0, flowCollectionPadding: false });
    } catch (err) {
      throw ConfigError.single(this.file, `cannot write the edited registry: ${(err as Error).message}`);
    }
    // Even so, yaml restyles what it renders (aligned comments, `{ a: b }`): entries the edit did
    // not change are kept from the file as it was, byte for byte.
    const text = (this.source && keepUntouchedEntries(this.source, this.doc, rendered, this.touched)) ?? rendered;
    const clients = validateRegistry(parseYamlText(text, this.file), options);
    const tmp = join(dirname(this.file), `.${basename(this.file)}.${process.pid}.tmp`);
    try {
      writeFileSync(tmp, text, { mode: this.mode, flag: 'wx' });
      renameSync(tmp, this.file);
    } catch (err) {
      rmSync(tmp, { force: true });
      throw ConfigError.single(this.file, `cannot write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return clients;
  }

  private indexOf(clientId: string): number {
    const clients = this.doc.get('clients', true);
    if (!isSeq(clients)) return -1;
    return clients.items.findIndex((item) => isMap(item) && item.get('client_id') === clientId);
  }

  private require(clientId: string): number {
    const i = this.indexOf(clientId);
    if (i < 0) throw ConfigError.single(this.file, `no client ${JSON.stringify(clientId)}`);
    return i;
  }

  private entry(clientId: string): YAMLMap {
    return (this.doc.get('clients', true) as YAMLSeq).items[this.require(clientId)] as YAMLMap;
  }
}
