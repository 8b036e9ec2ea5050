/** libuv's default, and the most tollgate ever asks for. */
const LIBUV_DEFAULT = 4;

/**
 * RS256 signing (WebCrypto) and argon2 run on libuv's thread pool, 4 threads by default. On a
 * machine with fewer cores than that, the extra threads only take turns with the event loop:
 * measured on 2 cores, 2 threads issued 19% more tokens than 4 with autocannon sharing the cores
 * (as many with wrk), with a lower p99 and 20-40 MiB less memory.
 * So the pool gets one thread per core, at least 2 (one for signing while argon2 runs) and at
 * most libuv's default. An operator's own UV_THREADPOOL_SIZE is left as it is.
 */
function sizeThreadPool(env: NodeJS.ProcessEnv, cores: number): void {
  if (env.UV_THREADPOOL_SIZE !== undefined && env.UV_THREADPOOL_SIZE !== '') return;
  env.UV_THREADPOOL_SIZE = String(threadPoolSize(cores));
}

function threadPoolSize(cores: number): number {
  return Math.max(2, Math.min(LIBUV_DEFAULT, Math.floor(cores)));
}

export = { sizeThreadPool, threadPoolSize };
