// One load run: autocannon against one request shape, with the server's RSS sampled meanwhile.
// Responses other than 2xx are counted; a run where more than 1% fail is stopped early and
// reported as failed, because its figures would measure the failures.

import autocannon from 'autocannon';
import { cpuMs, rssMiB } from './processes.mjs';
import { runWrk } from './wrk.mjs';

export const MAX_FAILED_SHARE = 0.01;
const MIN_RESPONSES_BEFORE_ABORT = 200;

export class LoadError extends Error {}

/**
 * Sends the request once outside the load and checks the answer (status 200 and `check(body)`),
 * so a misconfigured scenario fails with a message instead of being measured.
 */
export async function preflight(target, request) {
  let res;
  try {
    res = await fetch(`${target.url}${request.path}`, {
      method: request.method,
      headers: { ...request.headers, ...request.dynamicHeaders?.() },
      body: request.body,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    throw new LoadError(`${request.method} ${request.path} got no answer: ${err.cause?.message ?? err.message}`);
  }
  const text = await res.text();
  if (res.status !== 200) throw new LoadError(`${request.method} ${request.path} answered ${res.status}: ${text.slice(0, 200)}`);
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new LoadError(`${request.method} ${request.path} answered non-JSON: ${text.slice(0, 200)}`);
  }
  const problem = request.check?.(body);
  if (problem) throw new LoadError(`${request.method} ${request.path}: ${problem}`);
  return body;
}

/** Runs `load()` while calling `sample` every `everyMs`, and once before and once after. */
async function whileSampling(sample, everyMs, load) {
  sample();
  const timer = setInterval(sample, everyMs);
  try {
    return await load();
  } finally {
    clearInterval(timer);
    sample();
  }
}

function autocannonOf(target, request, { connections, seconds }) {
  return autocannon({
    url: `${target.url}${request.path}`,
    method: request.method,
    headers: request.headers,
    body: request.body,
    connections,
    duration: seconds,
    // Headers made afresh for each request (a DPoP proof), when the scenario has some.
    ...(request.dynamicHeaders === undefined
      ? {}
      : { requests: [{ setupRequest: (req) => ({ ...req, headers: { ...req.headers, ...request.dynamicHeaders() } }) }] }),
  });
}

/**
 * Runs the load generator for `seconds` and returns successful req/s, p50/p99 latency (ms),
 * the failure counts, the server's peak and mean RSS over the run and its CPU time per request.
 */
export async function measure(target, request, { connections, seconds, rssEveryMs = 250, generator = 'autocannon' }) {
  const rss = [];
  const sample = () => {
    const v = rssMiB(target.pid);
    if (v !== undefined) rss.push(v);
  };
  const rssFigures = () => ({ rssPeak: Math.max(...rss), rssMean: rss.reduce((a, b) => a + b, 0) / rss.length });
  const cpuBefore = cpuMs(target.pid);
  // The server's CPU time over the run per request, in µs: what a request costs the server,
  // whatever share of the cores it got against the load generator and the other servers.
  const cpuFigures = (requests) => {
    const after = cpuMs(target.pid);
    return { cpuPerRequest: cpuBefore === undefined || after === undefined || requests === 0 ? undefined : ((after - cpuBefore) * 1000) / requests };
  };

  if (generator === 'wrk') {
    const report = await whileSampling(sample, rssEveryMs, () => runWrk(target, request, { connections, seconds }));
    // wrk cannot stop early on failures: they are judged once it is done.
    return judged({ ...report, rps: report.ok / report.seconds, ...rssFigures(), ...cpuFigures(report.total) }, { stoppable: false });
  }

  let responses = 0;
  let failed = 0;
  let aborted = false;
  const result = await whileSampling(sample, rssEveryMs, () => {
    const instance = autocannonOf(target, request, { connections, seconds });
    instance.on('response', (_client, statusCode) => {
      responses += 1;
      if (statusCode < 200 || statusCode > 299) failed += 1;
      if (!aborted && responses >= MIN_RESPONSES_BEFORE_ABORT && failed / responses > MAX_FAILED_SHARE) {
        aborted = true;
        instance.stop();
      }
    });
    return instance;
  });

  const ok = result['2xx'];
  const bad = result.non2xx + result.errors;
  const total = result.requests.total + result.errors;
  const codes = Object.entries(result.statusCodeStats)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, { count }]) => `${code}: ${count}`);
  if (result.errors > 0) codes.push(`socket errors: ${result.errors} (timeouts: ${result.timeouts})`);
  const run = {
    rps: ok / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    ok,
    failed: bad,
    total,
    failures: codes.join(', '),
    seconds: result.duration,
    ...rssFigures(),
    ...cpuFigures(total),
  };
  return judged(run, { stoppable: true, aborted });
}

/**
 * A run whose figures would measure failures (more than MAX_FAILED_SHARE of its responses, or
 * none successful) is thrown as a LoadError; any other is returned. `stoppable`: the generator
 * can stop a failing run early (autocannon), which the message then says.
 */
function judged(run, { stoppable, aborted = false }) {
  if (aborted || (run.total > 0 && run.failed / run.total > MAX_FAILED_SHARE)) {
    throw new LoadError(
      `${run.failed} of ${run.total} responses failed (${run.failures}); ${stoppable ? 'stopped, since ' : ''}the figures would measure failures`,
    );
  }
  if (run.ok <= 0) throw new LoadError('no successful response during the run');
  return run;
}

/** Load for a long time while sampling RSS every `everySeconds` (the memory soak). */
export async function soak(target, request, { connections, seconds, everySeconds = 10, generator = 'autocannon' }) {
  const samples = [];
  const start = Date.now();
  const sample = () => samples.push({ t: Math.round((Date.now() - start) / 1000), rss: rssMiB(target.pid) });
  if (generator === 'wrk') {
    const report = await whileSampling(sample, everySeconds * 1000, () => runWrk(target, request, { connections, seconds }));
    return { samples, rps: report.ok / report.seconds, failed: report.failed, total: report.total };
  }
  const result = await whileSampling(sample, everySeconds * 1000, () => autocannonOf(target, request, { connections, seconds }));
  return {
    samples,
    rps: result['2xx'] / result.duration,
    failed: result.non2xx + result.errors,
    total: result.requests.total + result.errors,
  };
}
