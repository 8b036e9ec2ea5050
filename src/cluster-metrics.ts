import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/**
 * /metrics under `serve --workers N`. Each worker counts only the requests it answered, and a
 * scrape lands on whichever worker accepts the connection, so served as they are the counters
 * would jump between workers' values from one scrape to the next. Instead the worker that is
 * asked passes the request to the primary, which collects every worker's registry over the
 * cluster channel and sums them (prom-client's aggregation: counters and histograms add up;
 * gauges say how, e.g. `max`), and the worker serves that.
 */

const REQUEST = 'tollgate:metrics-request';
const RESPONSE = 'tollgate:metrics-response';
/** prom-client gives up on silent workers after 5 s; the worker waits a little longer than that. */
const WORKER_TIMEOUT_MS = 6_000;

interface MetricsRequest {
  type: typeof REQUEST;
  id: number;
}

interface MetricsResponse {
  type: typeof RESPONSE;
  id: number;
  text?: string;
  error?: string;
}

const isRequest = (m: unknown): m is MetricsRequest => (m as MetricsRequest | null)?.type === REQUEST && typeof (m as MetricsRequest).id === 'number';
const isResponse = (m: unknown): m is MetricsResponse => (m as MetricsResponse | null)?.type === RESPONSE && typeof (m as MetricsResponse).id === 'number';

/** In the primary: answers each worker's request with the metrics of all workers, summed. */
export function serveWorkerMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker: Worker, message: unknown) => {
    if (!isRequest(message)) return;
    const answer = (m: Omit<MetricsResponse, 'type' | 'id'>): void => {
      if (worker.isConnected()) worker.send({ type: RESPONSE, id: message.id, ...m });
    };
    aggregator.clusterMetrics().then(
      (text) => answer({ text }),
      (err: unknown) => answer({ error: err instanceof Error ? err.message : String(err) }),
    );
  });
}

/**
 * In a worker: lets the primary collect `registry`, and returns what renders /metrics: the
 * metrics of all workers, as the primary sums them. Rejects when the primary does not answer.
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  AggregatorRegistry.setRegistries([registry]);
  // Making an aggregator is what makes prom-client answer the primary's collection requests.
  new AggregatorRegistry();
  const pending = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  let nextId = 0;
  process.on('message', (message: unknown) => {
    if (!isResponse(message)) return;
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
        reject(new Error('the primary did not send the workers\' metrics in time'));
      }, WORKER_TIMEOUT_MS);
      pending.set(id, { resolve, reject, timer });
      process.send!({ type: REQUEST, id } satisfies MetricsRequest);
    });
}
