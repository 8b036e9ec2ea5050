import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue, type Registry } from 'prom-client';

/**
 * /metrics under `serve --workers N`. Each worker counts only the requests it answered, and a
 * scrape lands on whichever worker accepts the connection, so served as they are the counters
 * would jump between workers' values from one scrape to the next. Instead the worker that is
 * asked passes the request to the primary, which collects every worker's registry over the
 * cluster channel and sums them (prom-client's aggregation: counters and histograms add up;
 * gauges say how, e.g. `max`), and the worker serves that.
 *
 * The collection is tollgate's own rather than prom-client's `clusterMetrics()`, which keeps a
 * collection that timed out in memory for good: with a hung worker, every scrape would leave one
 * behind in the primary. Here a collection is forgotten once it is answered or has timed out.
 */

/** Worker → primary: "send me everyone's metrics". */
const SCRAPE = 'tollgate:metrics-scrape';
/** Primary → worker: the answer to SCRAPE. */
const SCRAPED = 'tollgate:metrics-scraped';
/** Primary → worker: "send me your own metrics". */
const COLLECT = 'tollgate:metrics-collect';
/** Worker → primary: the answer to COLLECT. */
const COLLECTED = 'tollgate:metrics-collected';

/** How long the primary waits for every worker's metrics. */
const COLLECT_TIMEOUT_MS = 5_000;
/** The worker waits a little longer, so that the primary's own timeout is what it reports. */
const SCRAPE_TIMEOUT_MS = 6_000;

type Metrics = MetricObjectWithValues<MetricValue<string>>[];

interface Message {
  type: string;
  id: number;
  text?: string;
  metrics?: Metrics;
  error?: string;
}

const isMessage = (m: unknown, type: string): m is Message =>
  typeof m === 'object' && m !== null && (m as Message).type === type && typeof (m as Message).id === 'number';

interface Collection {
  waiting: Set<number>;
  parts: Metrics[];
  timer: NodeJS.Timeout;
  settle: (err: Error | undefined) => void;
}

/** In the primary: answers each worker's scrape with the metrics of all workers, summed. */
export function serveWorkerMetrics(): void {
  const collections = new Map<number, Collection>();
  let nextId = 0;

  const collectAll = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
      const id = nextId++;
      const collection: Collection = {
        waiting: new Set(workers.map((w) => w.id)),
        parts: [],
        timer: setTimeout(() => collection.settle(new Error(`no answer from ${collection.waiting.size} worker(s) within ${COLLECT_TIMEOUT_MS / 1000} s`)), COLLECT_TIMEOUT_MS),
        settle: (err) => {
          collections.delete(id);
          clearTimeout(collection.timer);
          if (err !== undefined) return reject(err);
          try {
            resolve(AggregatorRegistry.aggregate(collection.parts).metrics());
          } catch (e) {
            reject(e as Error);
          }
        },
      };
      collections.set(id, collection);
      for (const w of workers) w.send({ type: COLLECT, id });
      if (workers.length === 0) collection.settle(undefined);
    });

  cluster.on('message', (worker: Worker, message: unknown) => {
    if (isMessage(message, SCRAPE)) {
      const answer = (m: { text?: string; error?: string }): void => {
        if (worker.isConnected()) worker.send({ type: SCRAPED, id: message.id, ...m });
      };
      collectAll().then(
        (text) => answer({ text }),
        (err: unknown) => answer({ error: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    if (isMessage(message, COLLECTED)) {
      const collection = collections.get(message.id);
      // An answer after the timeout finds nothing to add to.
      if (collection === undefined || !collection.waiting.delete(worker.id)) return;
      if (message.error !== undefined || !Array.isArray(message.metrics)) {
        collection.settle(new Error(`a worker could not collect its metrics: ${message.error ?? 'no metrics'}`));
        return;
      }
      collection.parts.push(message.metrics);
      if (collection.waiting.size === 0) collection.settle(undefined);
    }
  });
  // A worker that dies while it is asked will never answer: collect without it.
  cluster.on('exit', (worker: Worker) => {
    for (const collection of collections.values()) {
      if (collection.waiting.delete(worker.id) && collection.waiting.size === 0) collection.settle(undefined);
    }
  });
}

/**
 * In a worker: gives the primary this worker's `registry` when it collects, and returns what
 * renders /metrics: the metrics of all workers, as the primary sums them. Rejects when the
 * primary does not answer in time.
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (isMessage(message, COLLECT)) {
      registry.getMetricsAsJSON().then(
        (metrics) => process.send?.({ type: COLLECTED, id: message.id, metrics }),
        (err: unknown) => process.send?.({ type: COLLECTED, id: message.id, error: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    if (!isMessage(message, SCRAPED)) return;
    const waiting = pending.get(message.id);
    if (waiting === undefined) return;
    pending.delete(message.id);
    clearTimeout(waiting.timer);
    if (typeof message.text === 'string') waiting.resolve(message.text);
    else waiting.reject(new Error(`the primary could not collect the workers' metrics: ${message.error ?? 'no answer'}`));
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error("the primary did not send the workers' metrics in time"));
      }, SCRAPE_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: SCRAPE, id });
    });
}
