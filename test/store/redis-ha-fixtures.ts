import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { tempDir } from '../helpers.js';

// Redis Sentinel and Redis Cluster set-ups of a test file's own: real redis-server processes on
// free loopback ports, in a temporary folder, stopped by process id (stop()), even when a test
// failed. Nothing is persisted: the tests are about replication and failover, not disks.

/** One redis-server (or sentinel) started here. */
export interface RedisNode {
  port: number;
  proc: ChildProcess;
}

/** Whether a port is free on loopback right now. */
async function portFree(port: number): Promise<boolean> {
  const server = createServer();
  server.on('error', () => {});
  server.listen(port, '127.0.0.1');
  const listening = await Promise.race([once(server, 'listening').then(() => true), once(server, 'error').then(() => false)]);
  if (listening) {
    server.close();
    await once(server, 'close');
  }
  return listening;
}

/**
 * A port that is free, and whose cluster bus port (port + 10000) is too: taken at random from
 * 10000–21999, so that both stay below the ports the system hands out for freePort() (32768 and
 * up on Linux) and two files (or two runs) rarely try the same one.
 */
async function freeNodePort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * 12_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free pair of loopback ports found');
}

export function quickClient(port: number, password?: string): Redis {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0, connectTimeout: 1000, ...(password ? { password } : {}) });
  client.on('error', () => {});
  return client;
}

/** Sends one command to the server on port; undefined when it does not answer. */
export async function ask(port: number, ...args: string[]): Promise<unknown> {
  return askWith(port, undefined, ...args);
}

async function askWith(port: number, password: string | undefined, ...args: string[]): Promise<unknown> {
  const client = quickClient(port, password);
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

/** Polls check until it holds, failing with `what` after ms. */
export async function until(what: string, check: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function startNode(dir: string, port: number, args: string[]): RedisNode {
  mkdirSync(dir, { recursive: true });
  const proc = spawn('redis-server', [...args, '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  return { port, proc };
}

async function answered(node: RedisNode): Promise<void> {
  await until(`redis-server on port ${node.port}`, async () => {
    if (node.proc.exitCode !== null) throw new Error(`redis-server on port ${node.port} exited with ${node.proc.exitCode}`);
    return (await ask(node.port, 'PING')) === 'PONG';
  });
}

/** Kills one node (SIGKILL by default, as a crash would) and waits until it has exited. */
export async function killNode(node: RedisNode, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
  if (node.proc.exitCode !== null || node.proc.signalCode !== null) return;
  const exited = once(node.proc, 'exit');
  node.proc.kill(signal);
  await exited;
}

async function stopAll(nodes: RedisNode[], dir: string): Promise<void> {
  await Promise.all(nodes.map((n) => killNode(n)));
  rmSync(dir, { recursive: true, force: true });
}

function infoField(info: unknown, field: string): string | undefined {
  return typeof info === 'string' ? new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim() : undefined;
}

export interface SentinelSetup {
  master: string;
  /** The sentinels require this password (requirepass); the data servers require none. */
  sentinelPassword: string;
  primary: RedisNode;
  replica: RedisNode;
  sentinels: RedisNode[];
  /** host:port of each sentinel, as store.sentinel.nodes lists them. */
  nodes: string[];
  /** Starts the replica again (after stopReplica) and waits until it is in sync. */
  restartReplica(): Promise<void>;
  /** The port of the server the sentinels currently call the primary. */
  currentPrimaryPort(): Promise<number | undefined>;
  stop(): Promise<void>;
}

/**
 * A primary, one replica of it and three sentinels watching them (quorum 2), ready once the
 * replica is in sync and every sentinel knows the replica and the two other sentinels, so that a
 * failover can happen. The sentinels call the primary down after 1 s without an answer.
 */
export async function startSentinelSetup(master = 'tollgate', sentinelPassword = 'sentinel-pa55'): Promise<SentinelSetup> {
  const dir = tempDir('tollgate-sentinel-');
  const taken = new Set<number>();
  const nodes: RedisNode[] = [];
  try {
    const primary = startNode(join(dir, 'primary'), await freeNodePort(taken), []);
    nodes.push(primary);
    await answered(primary);
    const replicaPort = await freeNodePort(taken);
    const replicaArgs = ['--replicaof', '127.0.0.1', String(primary.port)];
    let replica = startNode(join(dir, 'replica'), replicaPort, replicaArgs);
    nodes.push(replica);
    const sentinels: RedisNode[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freeNodePort(taken);
      const conf = join(dir, `sentinel-${i}.conf`);
      writeFileSync(
        conf,
        [
          `sentinel monitor ${master} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${master} 1000`,
          `sentinel failover-timeout ${master} 10000`,
          `sentinel parallel-syncs ${master} 1`,
          `requirepass ${sentinelPassword}`,
          `sentinel sentinel-pass ${sentinelPassword}`,
          '',
        ].join('\n'),
      );
      const proc = spawn('redis-server', [conf, '--sentinel', '--port', String(port), '--bind', '127.0.0.1', '--dir', dir], { stdio: 'ignore' });
      const sentinel = { port, proc };
      nodes.push(sentinel);
      sentinels.push(sentinel);
    }
    const inSync = async (): Promise<boolean> => infoField(await ask(replica.port, 'INFO', 'replication'), 'master_link_status') === 'up';
    await until('the replica to be in sync', inSync);
    for (const s of sentinels) {
      await until(`sentinel ${s.port} to know the replica and the other sentinels`, async () => {
        const replicas = await askWith(s.port, sentinelPassword, 'SENTINEL', 'REPLICAS', master);
        const others = await askWith(s.port, sentinelPassword, 'SENTINEL', 'SENTINELS', master);
        return Array.isArray(replicas) && replicas.length === 1 && Array.isArray(others) && others.length === 2;
      });
    }
    const setup: SentinelSetup = {
      master,
      sentinelPassword,
      primary,
      get replica() {
        return replica;
      },
      sentinels,
      nodes: sentinels.map((s) => `127.0.0.1:${s.port}`),
      async restartReplica() {
        replica = startNode(join(dir, 'replica'), replicaPort, replicaArgs);
        nodes.push(replica);
        await answered(replica);
        await until('the replica to be in sync again', inSync);
      },
      async currentPrimaryPort() {
        const reply = await askWith(sentinels[0]!.port, sentinelPassword, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', master);
        return Array.isArray(reply) ? Number(reply[1]) : undefined;
      },
      stop: () => stopAll(nodes, dir),
    };
    return setup;
  } catch (err) {
    await stopAll(nodes, dir);
    throw err;
  }
}

export interface ClusterSetup {
  masters: RedisNode[];
  all: RedisNode[];
  /** host:port of every node, as store.cluster.nodes may list them. */
  nodes: string[];
  /** The node that now serves the slot of key as a master. */
  masterOf(key: string): Promise<RedisNode>;
  /** The node that replicates master. */
  replicaOf(master: RedisNode): Promise<RedisNode>;
  /** Starts a stopped node again on its port and folder (it rejoins the cluster) and waits until it is in sync. */
  restart(node: RedisNode): Promise<RedisNode>;
  stop(): Promise<void>;
}

/**
 * Three masters, each with one replica, made into a cluster by `redis-cli --cluster create`;
 * ready once every node reports cluster_state ok. A node is called failing after 1 s without
 * an answer.
 */
export async function startClusterSetup(): Promise<ClusterSetup> {
  const dir = tempDir('tollgate-cluster-');
  const taken = new Set<number>();
  const all: RedisNode[] = [];
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '1000'];
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freeNodePort(taken);
      all.push(startNode(join(dir, String(port)), port, args));
    }
    for (const node of all) await answered(node);
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...all.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' });
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
    for (const node of all) {
      await until(`cluster node ${node.port} to be ok`, async () => infoField(await ask(node.port, 'CLUSTER', 'INFO'), 'cluster_state') === 'ok');
    }
    const roles = await Promise.all(all.map(async (n) => infoField(await ask(n.port, 'INFO', 'replication'), 'role')));
    const masters = all.filter((_, i) => roles[i] === 'master');
    // Every replica in sync, so that the first writes are replicated at once.
    for (const node of all.filter((_, i) => roles[i] !== 'master')) {
      await until(`replica ${node.port} to be in sync`, async () => infoField(await ask(node.port, 'INFO', 'replication'), 'master_link_status') === 'up');
    }
    return {
      masters,
      all,
      nodes: all.map((n) => `127.0.0.1:${n.port}`),
      async masterOf(key: string) {
        for (const node of all) {
          if (node.proc.exitCode !== null || node.proc.signalCode !== null) continue;
          const slot = await ask(node.port, 'CLUSTER', 'KEYSLOT', key);
          const slots = await ask(node.port, 'CLUSTER', 'SLOTS');
          if (typeof slot !== 'number' || !Array.isArray(slots)) continue;
          for (const [from, to, owner] of slots as [number, number, [string, number]][]) {
            if (slot >= from && slot <= to) {
              const found = all.find((n) => n.port === owner[1]);
              if (found) return found;
            }
          }
        }
        throw new Error(`no master found for ${key}`);
      },
      async replicaOf(master: RedisNode) {
        for (const node of all) {
          if (node === master || node.proc.exitCode !== null || node.proc.signalCode !== null) continue;
          const info = await ask(node.port, 'INFO', 'replication');
          if (infoField(info, 'role') === 'slave' && Number(infoField(info, 'master_port')) === master.port) return node;
        }
        throw new Error(`no replica of ${master.port} found`);
      },
      async restart(node: RedisNode) {
        const again = startNode(join(dir, String(node.port)), node.port, args);
        all[all.indexOf(node)] = again;
        await answered(again);
        await until(`node ${node.port} to be back in sync`, async () => {
          const info = await ask(node.port, 'INFO', 'replication');
          return infoField(info, 'role') === 'master' || infoField(info, 'master_link_status') === 'up';
        });
        return again;
      },
      stop: () => stopAll(all, dir),
    };
  } catch (err) {
    await stopAll(all, dir);
    throw err;
  }
}
