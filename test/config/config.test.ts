import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRegistryFile } from '../../src/clients/yaml-registry.js';
import { loadConfig } from '../../src/config/config.js';
import { tempDir } from '../helpers.js';
import { problems, tempFile } from '../shared/config-problems.js';

const configFile = (text: string): string => tempFile('tollgate.yaml', text);

describe('loadConfig', () => {
  it('fills defaults and resolves paths against the config file', () => {
    const file = configFile('issuer: https://auth.example.com\n');
    const dir = join(file, '..');
    const config = loadConfig(file);
    expect(config).toMatchObject({
      issuer: 'https://auth.example.com',
      listen: { host: '127.0.0.1', port: 8080 },
      clients_file: join(dir, 'clients.yaml'),
      tokens: { ttl: 900, audience: [] },
      keys: { dir: join(dir, '../data/keys'), algorithm: 'RS256' },
      store: { kind: 'sqlite', path: join(dir, '../data/tollgate.db') },
      metadata: { publish_scopes: true, max_age: 300 },
    });
    expect(Object.isFrozen(config.tokens)).toBe(true);
  });

  it('loads the shipped config/tollgate.yaml', () => {
    expect(loadConfig('config/tollgate.yaml').issuer).toBe('http://127.0.0.1:8080');
  });

  it('applies TOLLGATE_* overrides, typed as YAML scalars, with paths relative to the working directory', () => {
    const file = configFile('issuer: https://auth.example.com\ntokens: { ttl: 900 }\n');
    const config = loadConfig(file, {
      cwd: '/srv',
      env: {
        TOLLGATE_LISTEN__PORT: '9090',
        TOLLGATE_TOKENS__AUDIENCE: '[https://a.test, https://b.test]',
        TOLLGATE_STORE__PATH: 'state/db.sqlite',
        TOLLGATE_METADATA__PUBLISH_SCOPES: 'false',
        TOLLGATE_CLIENTS_FILE: '/etc/tollgate/clients.yaml',
        TOLLGATE_CONFIG: 'ignored',
        OTHER: 'x',
      },
    });
    expect(config.listen.port).toBe(9090);
    expect(config.tokens.audience).toEqual(['https://a.test', 'https://b.test']);
    expect(config.store.path).toBe('/srv/state/db.sqlite');
    expect(config.metadata.publish_scopes).toBe(false);
    expect(config.clients_file).toBe('/etc/tollgate/clients.yaml');
  });

  it('names the environment variable when an override is bad', () => {
    const file = configFile('issuer: https://auth.example.com\n');
    expect(problems(() => loadConfig(file, { env: { TOLLGATE_TOKENS__TTL: '5' } }))).toEqual([
      'environment TOLLGATE_TOKENS__TTL: tokens.ttl: must be at least 60 seconds',
    ]);
    expect(problems(() => loadConfig(file, { env: { TOLLGATE_NOPE: '1' } }))).toEqual(['environment TOLLGATE_NOPE: nope: unknown field']);
    expect(problems(() => loadConfig(file, { env: { TOLLGATE___PROTO__: '1' } }))[0]).toMatch(/not a valid override name/);
  });

  it('leaves alone the variables Kubernetes gives a pod for a Service named tollgate, and nothing else like them', () => {
    const file = configFile('issuer: https://auth.example.com\n');
    const serviceLinks = {
      TOLLGATE_SERVICE_HOST: '10.96.0.12',
      TOLLGATE_SERVICE_PORT: '80',
      TOLLGATE_SERVICE_PORT_HTTP: '80',
      TOLLGATE_PORT: 'tcp://10.96.0.12:80',
      TOLLGATE_PORT_80_TCP: 'tcp://10.96.0.12:80',
      TOLLGATE_PORT_80_TCP_PROTO: 'tcp',
      TOLLGATE_PORT_80_TCP_PORT: '80',
      TOLLGATE_PORT_80_TCP_ADDR: '10.96.0.12',
    };
    expect(loadConfig(file, { env: serviceLinks }).issuer).toBe('https://auth.example.com');
    expect(problems(() => loadConfig(file, { env: { TOLLGATE_PORTS: '80' } }))).toEqual(['environment TOLLGATE_PORTS: ports: unknown field']);
    expect(problems(() => loadConfig(file, { env: { TOLLGATE_PORT_80: 'x' } }))).toEqual(['environment TOLLGATE_PORT_80: port_80: unknown field']);
  });

  it('lists every problem with file, line and path', () => {
    const file = configFile(`issuer: https://auth.example.com/
listen:
  port: 70000
tokens:
  ttl: 30
  audience: ["has space"]
colour: blue
`);
    expect(problems(() => loadConfig(file))).toEqual([
      `${file}:1: issuer: must be an http(s) URL with no query, fragment, credentials or trailing slash`,
      expect.stringMatching(new RegExp(`^${file}:3: listen.port: `)),
      `${file}:5: tokens.ttl: must be at least 60 seconds`,
      expect.stringMatching(new RegExp(`^${file}:6: tokens.audience\\[0\\]: must be a non-empty string`)),
      `${file}:7: colour: unknown field`,
    ]);
  });

  it.each([
    ['a missing issuer', 'listen: { port: 8080 }\n', /issuer: is required/],
    ['an issuer with a query', 'issuer: https://a.test?x=1\n', /issuer: must be/],
    ['an issuer that is not http(s)', 'issuer: ftp://a.test\n', /issuer: must be/],
    ['a YAML syntax error', 'issuer: [unclosed\n', /:\d+: YAML syntax: /],
    ['a duplicated key', 'issuer: https://a.test\nissuer: https://b.test\n', /:2: YAML syntax: Map keys must be unique/],
    ['a list instead of a mapping', '- a\n- b\n', /must be a YAML mapping/],
    ['a wrong type', 'issuer: https://a.test\nlisten: { port: "eighty" }\n', /listen.port: must be a port number/],
    ['an unknown store kind', 'issuer: https://a.test\nstore: { kind: mongo }\n', /store.kind: must be sqlite, memory, redis or postgres/],
    ['a redis store without a url', 'issuer: https://a.test\nstore: { kind: redis }\n', /store.url: is required when store.kind is redis/],
    ['a store url that is not redis', 'issuer: https://a.test\nstore: { kind: redis, url: "http://cache:6379" }\n', /store.url: must start with redis:\/\/ or rediss:\/\//],
    ['a store url with options', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache:6379/0?tls=true" }\n', /store.url: must not have a query/],
    ['a store url with a path', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache/tokens" }\n', /store.url: must end with \/N, a database number/],
    ['a store prefix with a space', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache", prefix: "a b" }\n', /store.prefix: must be non-empty and contain no whitespace/],
    ['an empty store prefix', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache", prefix: "" }\n', /store.prefix: must be non-empty/],
    ['a url and a sentinel at once', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache", sentinel: { master: m, nodes: ["s1:26379"] } }\n', /store.sentinel: give exactly one of store.url, store.sentinel, store.cluster \(found store.url and store.sentinel\)/],
    ['a sentinel and a cluster at once', 'issuer: https://a.test\nstore: { kind: redis, sentinel: { master: m, nodes: ["s1:26379"] }, cluster: { nodes: ["c1:7000"] } }\n', /give exactly one of/],
    ['a sentinel without a master', 'issuer: https://a.test\nstore: { kind: redis, sentinel: { nodes: ["s1:26379"] } }\n', /store.sentinel.master: is required: the name the sentinels monitor/],
    ['a sentinel node without a port', 'issuer: https://a.test\nstore: { kind: redis, sentinel: { master: m, nodes: ["s1"] } }\n', /store.sentinel.nodes\[0\]: must be host:port/],
    ['a cluster node with a port out of range', 'issuer: https://a.test\nstore: { kind: redis, cluster: { nodes: ["c1:7000", "c2:70000"] } }\n', /store.cluster.nodes\[1\]: must be host:port/],
    ['an empty cluster', 'issuer: https://a.test\nstore: { kind: redis, cluster: { nodes: [] } }\n', /store.cluster.nodes: must list at least one server/],
    ['a cluster node listed twice', 'issuer: https://a.test\nstore: { kind: redis, cluster: { nodes: ["c1:7000", "c1:7000"] } }\n', /store.cluster.nodes: lists a server twice/],
    ['a cluster nodes string', 'issuer: https://a.test\nstore: { kind: redis, cluster: { nodes: "c1:7000" } }\n', /store.cluster.nodes: must be a list of host:port/],
    ['braces in the prefix of a cluster store', 'issuer: https://a.test\nstore: { kind: redis, cluster: { nodes: ["c1:7000"] }, prefix: "{tollgate}:" }\n', /store.prefix: must not contain \{ or \} with store.cluster/],
    ['a password beside a url', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache", password: x }\n', /store.password: does not apply with store.url, which carries its own/],
    ['tls beside a url', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache", tls: true }\n', /store.tls: does not apply with store.url: write rediss:\/\//],
    ['a sentinel username without a password', 'issuer: https://a.test\nstore: { kind: redis, sentinel: { master: m, nodes: ["s1:26379"], username: u } }\n', /store.sentinel.username: needs store.sentinel.password too/],
    ['a username without a password', 'issuer: https://a.test\nstore: { kind: redis, cluster: { nodes: ["c1:7000"] }, username: u }\n', /store.username: needs store.password too/],
    ['a negative min_replicas', 'issuer: https://a.test\nstore: { kind: redis, url: "redis://cache", min_replicas: -1 }\n', /store.min_replicas: /],
    ['min_replicas with sqlite', 'issuer: https://a.test\nstore: { kind: sqlite, min_replicas: 1 }\n', /store.min_replicas: applies only to store.kind redis/],
    ['a cluster with sqlite', 'issuer: https://a.test\nstore: { cluster: { nodes: ["c1:7000"] } }\n', /store.cluster: applies only to store.kind redis/],
  ])('refuses %s', (_what, text, expected) => {
    expect(problems(() => loadConfig(configFile(text))).join('\n')).toMatch(expected);
  });

  it('reads a redis store: url with password and db number, and the key prefix', () => {
    const config = loadConfig(configFile('issuer: https://a.test\nstore: { kind: redis, url: "rediss://:p%40ss@cache.internal:6380/2" }\n'));
    expect(config.store).toMatchObject({ kind: 'redis', url: 'rediss://:p%40ss@cache.internal:6380/2', prefix: 'tollgate:' });
    const overridden = loadConfig(configFile('issuer: https://a.test\n'), {
      env: { TOLLGATE_STORE__KIND: 'redis', TOLLGATE_STORE__URL: 'redis://10.0.0.5', TOLLGATE_STORE__PREFIX: 'billing:' },
    });
    expect(overridden.store).toMatchObject({ kind: 'redis', url: 'redis://10.0.0.5', prefix: 'billing:' });
  });

  it('reads a sentinel or cluster store with its credentials, the password from the environment kept a string', () => {
    const sentinel = loadConfig(
      configFile('issuer: https://a.test\nstore: { kind: redis, sentinel: { master: tollgate, nodes: ["10.0.0.1:26379", "[::1]:26380"] }, username: tg, min_replicas: 1, tls: true }\n'),
      { env: { TOLLGATE_STORE__PASSWORD: '007', TOLLGATE_STORE__SENTINEL__PASSWORD: '0042' } },
    );
    expect(sentinel.store).toMatchObject({
      kind: 'redis',
      sentinel: { master: 'tollgate', nodes: ['10.0.0.1:26379', '[::1]:26380'], password: '0042' },
      username: 'tg',
      password: '007',
      min_replicas: 1,
      tls: true,
    });
    const cluster = loadConfig(configFile('issuer: https://a.test\nstore: { kind: redis, cluster: { nodes: ["c1:7000", "c2:7000"] } }\n'));
    expect(cluster.store).toMatchObject({ kind: 'redis', cluster: { nodes: ['c1:7000', 'c2:7000'] }, prefix: 'tollgate:' });
  });

  it('never repeats a store password in an error', () => {
    const text = problems(() => loadConfig(configFile('issuer: https://a.test\nstore: { kind: redis, url: "redis://cache", password: hunter3 }\n'))).join('\n');
    expect(text).toMatch(/store.password: /);
    expect(text).not.toContain('hunter3');
  });

  it('never repeats a redis password in an error', () => {
    const text = problems(() => loadConfig(configFile('issuer: https://a.test\nstore: { kind: redis, url: "redis://:hunter2@cache/x?y" }\n'))).join('\n');
    expect(text).toMatch(/store.url: /);
    expect(text).not.toContain('hunter2');
  });

  it('refuses a missing file with one clear line', () => {
    expect(problems(() => loadConfig('/nonexistent/tollgate.yaml'))).toEqual(['/nonexistent/tollgate.yaml: file not found']);
  });
});

describe('keys.publish_before_use', () => {
  it.each([
    ['absent', '', 600],
    ['30s', 'keys: { publish_before_use: 30s }\n', 30],
    ['15m', 'keys: { publish_before_use: 15m }\n', 900],
    ['24h', 'keys: { publish_before_use: 24h }\n', 86_400],
    ['7d, the most', 'keys: { publish_before_use: 7d }\n', 604_800],
    ['0s: sign at once', 'keys: { publish_before_use: 0s }\n', 0],
    ['a number of seconds', 'keys: { publish_before_use: 120 }\n', 120],
  ])('reads %s as seconds', (_what, text, seconds) => {
    expect(loadConfig(configFile(`issuer: https://a.test\n${text}`)).keys.publish_before_use).toBe(seconds);
  });

  it('takes an override from the environment', () => {
    const file = configFile('issuer: https://a.test\nkeys: { publish_before_use: 10m }\n');
    expect(loadConfig(file, { env: { TOLLGATE_KEYS__PUBLISH_BEFORE_USE: '0s' } }).keys.publish_before_use).toBe(0);
    expect(loadConfig(file, { env: { TOLLGATE_KEYS__PUBLISH_BEFORE_USE: '90' } }).keys.publish_before_use).toBe(90);
    expect(problems(() => loadConfig(file, { env: { TOLLGATE_KEYS__PUBLISH_BEFORE_USE: 'later' } }))).toEqual([
      expect.stringMatching(/^environment TOLLGATE_KEYS__PUBLISH_BEFORE_USE: keys\.publish_before_use: must be a duration/),
    ]);
  });

  it.each([
    ['a word', 'soon'],
    ['more than 7 days', '8d'],
    ['a negative number', '-1'],
    ['a fraction of a second', '1.5'],
    ['a unit it does not know', '2w'],
    ['a boolean', 'true'],
    ['a list', '[10m]'],
  ])('refuses %s with the file, the line and the path', (_what, value) => {
    const file = configFile(`issuer: https://a.test\nkeys:\n  dir: ./keys\n  publish_before_use: ${value}\n`);
    expect(problems(() => loadConfig(file))).toEqual([expect.stringMatching(new RegExp(`^${file}:4: keys\\.publish_before_use: must be a duration`))]);
  });
});

describe('tokens.ttl', () => {
  // It took only a number of seconds while every other duration took "5m": `ttl: 5m` was refused.
  it.each([
    ['5m', 300],
    ['1h', 3600],
    ['24h', 86_400],
    ['60s', 60],
    ['900', 900],
  ])('reads %s as %i seconds', (value, seconds) => {
    expect(loadConfig(configFile(`issuer: https://a.test\ntokens: { ttl: ${value} }\n`)).tokens.ttl).toBe(seconds);
  });

  it('takes a duration from the environment', () => {
    expect(loadConfig(configFile('issuer: https://a.test\n'), { env: { TOLLGATE_TOKENS__TTL: '10m' } }).tokens.ttl).toBe(600);
  });

  it.each([
    ['30s', /tokens\.ttl: must be at least 60 seconds$/],
    ['25h', /tokens\.ttl: must be at most 86400 seconds \(24h\)$/],
    ['soon', /tokens\.ttl: must be a duration from 60s to 86400s/],
    ['1.5', /tokens\.ttl: must be a duration/],
    ['[5m]', /tokens\.ttl: must be a duration/],
  ])('refuses %s', (value, expected) => {
    expect(problems(() => loadConfig(configFile(`issuer: https://a.test\ntokens: { ttl: ${value} }\n`)))).toEqual([expect.stringMatching(expected)]);
  });

  it('is also how a client’s token_ttl is read in the registry', () => {
    const file = join(tempDir(), 'clients.yaml');
    writeFileSync(file, 'clients:\n  - client_id: k\n    auth_methods: [tls_client_auth]\n    tls_client_auth_san_dns: k.test\n    audiences: [https://api.test]\n    token_ttl: 10m\n');
    expect(loadRegistryFile(file, { defaultAudience: [] }).get('k')?.tokenTtl).toBe(600);
  });
});

describe('keys.source and keys.encryption_key_file', () => {
  it('defaults to dir, with no key-encryption key', () => {
    const config = loadConfig(configFile('issuer: https://a.test\n'));
    expect(config.keys.source).toBe('dir');
    expect(config.keys.encryption_key_file).toBeUndefined();
  });

  it('resolves the key files against the config file, and an override against the working directory', () => {
    const file = configFile('issuer: https://a.test\nkeys: { source: store, encryption_key_file: ./kek, previous_encryption_key_file: old.kek }\n');
    const dir = join(file, '..');
    expect(loadConfig(file).keys).toMatchObject({ source: 'store', encryption_key_file: join(dir, 'kek'), previous_encryption_key_file: join(dir, 'old.kek') });
    const fromEnv = loadConfig(configFile('issuer: https://a.test\n'), {
      cwd: '/srv',
      env: { TOLLGATE_KEYS__SOURCE: 'store', TOLLGATE_KEYS__ENCRYPTION_KEY_FILE: '1234' },
    });
    expect(fromEnv.keys).toMatchObject({ source: 'store', encryption_key_file: '/srv/1234' });
  });

  it.each([
    ['an unknown source', 'keys: { source: vault }\n', /keys\.source: must be dir or store/],
    ['store without a key file', 'keys: { source: store }\n', /keys\.encryption_key_file: is required when keys\.source is store/],
    ['a key file with source dir', 'keys: { encryption_key_file: ./kek }\n', /keys\.encryption_key_file: applies only to keys\.source store/],
    ['a previous key file with source dir', 'keys: { previous_encryption_key_file: ./kek }\n', /keys\.previous_encryption_key_file: applies only to keys\.source store/],
    ['an empty key file name', 'keys: { source: store, encryption_key_file: "" }\n', /keys\.encryption_key_file: /],
    ['a key file given as a list', 'keys: { source: store, encryption_key_file: [a] }\n', /keys\.encryption_key_file: must be a file name/],
    ['store with a memory store', 'keys: { source: store, encryption_key_file: ./kek }\nstore: { kind: memory }\n', /keys\.source: store needs a store that outlives the process/],
  ])('refuses %s', (_what, text, message) => {
    expect(problems(() => loadConfig(configFile(`issuer: https://a.test\n${text}`)))).toEqual([expect.stringMatching(message)]);
  });

  it('names the environment variable that set a bad source', () => {
    expect(problems(() => loadConfig(configFile('issuer: https://a.test\n'), { env: { TOLLGATE_KEYS__SOURCE: 'disk' } }))).toEqual([
      expect.stringMatching(/^environment TOLLGATE_KEYS__SOURCE: keys\.source: must be dir or store/),
    ]);
  });
});

describe('log.introspections and log.summary_interval', () => {
  it('default to a summary every minute', () => {
    const log = loadConfig(configFile('issuer: https://a.test\n')).log;
    expect(log).toEqual({ level: 'info', introspections: 'summary', summary_interval: 60 });
  });

  it.each([
    ['each, with a duration', 'log: { introspections: each, summary_interval: 5m }\n', { introspections: 'each', summary_interval: 300 }],
    ['summary, with seconds', 'log: { introspections: summary, summary_interval: 10 }\n', { introspections: 'summary', summary_interval: 10 }],
    ['the shortest interval', 'log: { summary_interval: 1s }\n', { introspections: 'summary', summary_interval: 1 }],
    ['the longest interval', 'log: { summary_interval: 1h }\n', { introspections: 'summary', summary_interval: 3600 }],
  ])('reads %s', (_what, text, expected) => {
    expect(loadConfig(configFile(`issuer: https://a.test\n${text}`)).log).toMatchObject(expected);
  });

  it.each([
    ['another word', 'introspections: all', /^log\.introspections: must be summary or each$/],
    ['a boolean', 'introspections: true', /^log\.introspections: must be summary or each$/],
    ['a list', 'introspections: [each]', /^log\.introspections: must be summary or each$/],
    ['no time at all', 'summary_interval: 0s', /^log\.summary_interval: must be a duration from 1s to 3600s/],
    ['more than an hour', 'summary_interval: 2h', /^log\.summary_interval: must be a duration from 1s to 3600s/],
    ['a word', 'summary_interval: often', /^log\.summary_interval: must be a duration/],
    ['a negative number', 'summary_interval: -5', /^log\.summary_interval: must be a duration/],
    ['a mapping', 'summary_interval: { s: 5 }', /^log\.summary_interval: must be a duration/],
  ])('refuses %s with the file, the line and the path', (_what, line, message) => {
    const file = configFile(`issuer: https://a.test\nlog:\n  ${line}\n`);
    const found = problems(() => loadConfig(file));
    expect(found).toHaveLength(1);
    expect(found[0]!.replace(`${file}:3: `, '')).toMatch(message);
  });

  it('takes overrides from the environment, and names the variable when one is bad', () => {
    const file = configFile('issuer: https://a.test\n');
    expect(loadConfig(file, { env: { TOLLGATE_LOG__INTROSPECTIONS: 'each', TOLLGATE_LOG__SUMMARY_INTERVAL: '30s' } }).log).toMatchObject({ introspections: 'each', summary_interval: 30 });
    expect(problems(() => loadConfig(file, { env: { TOLLGATE_LOG__INTROSPECTIONS: 'sometimes' } }))).toEqual([
      'environment TOLLGATE_LOG__INTROSPECTIONS: log.introspections: must be summary or each',
    ]);
  });
});
