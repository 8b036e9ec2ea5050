// A Redis Cluster of the benchmark's own: three masters with one replica each, on loopback, in a
// folder of the run, persisting nothing. Its processes are stopped with the run's other children.

import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { track } from './processes.mjs';

export function redisServerAvailable() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0 && spawnSync('redis-cli', ['--version'], { stdio: 'ignore' }).status === 0;
}

function portFree(port) {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A port whose cluster bus port (port + 10000) is free too. */
async function nodePort(taken) {
  for (let i = 0; i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * 12_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if ((await portFree(port)) && (await portFree(port + 10_000))) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
  throw new Error('no free pair of loopback ports for a cluster node');
}

function cli(port, ...args) {
  return spawnSync('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { encoding: 'utf8' });
}

async function until(what, check, ms = 30_000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts the cluster in dir; resolves the nodes as host:port once every node reports it ok. */
export async function startRedisCluster(dir) {
  const taken = new Set();
  const ports = [];
  for (let i = 0; i < 6; i++) {
    const port = await nodePort(taken);
    const nodeDir = join(dir, `cluster-${port}`);
    mkdirSync(nodeDir, { recursive: true });
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir, '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000'];
    track(spawn('redis-server', args, { stdio: 'ignore' }));
    ports.push(port);
  }
  for (const port of ports) await until(`redis-server on ${port}`, () => cli(port, 'PING').stdout.trim() === 'PONG');
  const nodes = ports.map((p) => `127.0.0.1:${p}`);
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  for (const port of ports) await until(`cluster node ${port}`, () => /cluster_state:ok/.test(cli(port, 'CLUSTER', 'INFO').stdout));
  for (const port of ports) {
    await until(`replica ${port} in sync`, () => {
      const info = cli(port, 'INFO', 'replication').stdout;
      return /role:master/.test(info) || /master_link_status:up/.test(info);
    });
  }
  return nodes;
}
