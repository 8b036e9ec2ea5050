import type { Logger } from 'pino';
import type { Clock } from '../shared/clock.js';

/**
 * The audit lines: what happened to which token, for whom. Every issuance and every revocation
 * is one line at info, always. Introspections, the hot path of a deployment (a resource server
 * asks once per API call), are counted per calling client and written as one summary line per
 * client per interval (`log.introspections: summary`, the default), or one line each (`each`).
 *
 * Each line is written through a child of the server's logger made once per event (its `event`
 * field serialized once), with the request's id as a field: no child logger is made per request,
 * and the fields are chosen here, so no secret can reach them.
 */

export type IntrospectionLogging = 'summary' | 'each';

/** Runs `tick` every `ms`; the returned function stops it. Injected so tests need not wait. */
export type Repeat = (ms: number, tick: () => void) => () => void;

const everyInterval: Repeat = (ms, tick) => {
  const timer = setInterval(tick, ms);
  // A summary timer must not keep a process alive that has nothing else to do.
  timer.unref();
  return () => clearInterval(timer);
};

export interface AuditOptions {
  introspections: IntrospectionLogging;
  /** Seconds between summary lines. */
  summaryInterval: number;
  clock: Clock;
  repeat?: Repeat;
}

/** What a request adds to every audit line about it. */
export interface RequestContext {
  /** Fastify's request id, as the other lines of the request carry it (`reqId`). */
  reqId: string;
  ip: string;
}

export interface Issued {
  clientId: string;
  /** Absent when the token has no scope, as in the token itself. */
  scope: string | undefined;
  aud: string | readonly string[];
  jti: string;
  exp: number;
  tokenType: string;
  /** Workload identity federation: which trusted issuer vouched for which workload. */
  federated?: { issuer: string; subject: string } | undefined;
}

/** One calling client's introspections since the last summary. */
interface Tally {
  active: number;
  inactive: number;
  errors: number;
  /** Inactive answers by reason (`expired`, `revoked`, …), for the log only. */
  reasons: Record<string, number>;
}

export class Audit {
  readonly #issued: Logger;
  readonly #revoked: Logger;
  readonly #revokeIgnored: Logger;
  readonly #introspected: Logger;
  readonly #summary: Logger;
  readonly #each: boolean;
  /** Whether info lines are written at all (tollgate never changes its level while it runs). */
  readonly #enabled: boolean;
  readonly #intervalMs: number;
  readonly #clock: Clock;
  readonly #repeat: Repeat;
  #tallies = new Map<string, Tally>();
  #since: number;
  #stop: (() => void) | undefined;

  constructor(logger: Logger, options: AuditOptions) {
    this.#issued = logger.child({ event: 'token.issued' });
    this.#revoked = logger.child({ event: 'token.revoked' });
    this.#revokeIgnored = logger.child({ event: 'token.revoke_ignored' });
    this.#introspected = logger.child({ event: 'token.introspected' });
    this.#summary = logger.child({ event: 'introspection.summary' });
    this.#each = options.introspections === 'each';
    this.#enabled = logger.isLevelEnabled('info');
    this.#intervalMs = options.summaryInterval * 1000;
    this.#clock = options.clock;
    this.#repeat = options.repeat ?? everyInterval;
    this.#since = options.clock.now();
  }

  tokenIssued(req: RequestContext, t: Issued): void {
    if (!this.#enabled) return;
    const line = {
      reqId: req.reqId,
      client_id: t.clientId,
      scope: t.scope,
      aud: t.aud,
      jti: t.jti,
      exp: t.exp,
      token_type: t.tokenType,
      ip: req.ip,
    };
    if (t.federated === undefined) this.#issued.info(line, 'token issued');
    else this.#issued.info({ ...line, federated_issuer: t.federated.issuer, federated_subject: t.federated.subject }, 'token issued');
  }

  tokenRevoked(req: RequestContext, clientId: string, jti: string): void {
    this.#revoked.info({ reqId: req.reqId, client_id: clientId, jti, ip: req.ip }, 'token revoked');
  }

  revokeIgnored(req: RequestContext, clientId: string, reason: string): void {
    this.#revokeIgnored.info({ reqId: req.reqId, client_id: clientId, reason, ip: req.ip }, 'nothing to revoke');
  }

  /** One introspection answered to `clientId`; `reason` says why an inactive token is inactive. */
  introspected(req: RequestContext, clientId: string, jti: string | undefined, active: boolean, reason: string | undefined): void {
    // Below info nothing would be written: nothing is counted either.
    if (!this.#enabled) return;
    if (this.#each) {
      this.#introspected.info({ reqId: req.reqId, client_id: clientId, jti, active, reason, ip: req.ip }, 'token introspected');
      return;
    }
    const tally = this.#tally(clientId);
    if (active) tally.active += 1;
    else {
      tally.inactive += 1;
      const why = reason ?? 'unknown';
      tally.reasons[why] = (tally.reasons[why] ?? 0) + 1;
    }
  }

  /** An introspection by an authenticated client that failed (the store did not answer, …). */
  introspectionFailed(clientId: string): void {
    // With `each`, the error handler's own line says it.
    if (this.#enabled && !this.#each) this.#tally(clientId).errors += 1;
  }

  /** Writes the summary of every client that introspected since the last one, and starts over. */
  flush(): void {
    const to = this.#clock.now();
    const tallies = this.#tallies;
    if (tallies.size > 0) {
      this.#tallies = new Map();
      const from = new Date(this.#since).toISOString();
      const until = new Date(to).toISOString();
      for (const [clientId, t] of tallies) {
        this.#summary.info(
          { client_id: clientId, active: t.active, inactive: t.inactive, errors: t.errors, reasons: t.reasons, from, to: until },
          'introspections',
        );
      }
    }
    this.#since = to;
  }

  /** Stops the summary timer and writes what is counted: at shutdown, nothing counted is lost. */
  close(): void {
    this.#stop?.();
    this.#stop = undefined;
    this.flush();
  }

  #tally(clientId: string): Tally {
    let tally = this.#tallies.get(clientId);
    if (tally === undefined) {
      tally = { active: 0, inactive: 0, errors: 0, reasons: {} };
      this.#tallies.set(clientId, tally);
      // The timer runs only while there is something to summarise; a summary after a quiet
      // spell starts from the first introspection, not from the end of the last summary.
      if (this.#stop === undefined) {
        this.#since = this.#clock.now();
        this.#stop = this.#repeat(this.#intervalMs, () => this.#tick());
      }
    }
    return tally;
  }

  #tick(): void {
    const idle = this.#tallies.size === 0;
    this.flush();
    // An interval with no introspection stops the timer; the next one starts it again.
    if (idle) {
      this.#stop?.();
      this.#stop = undefined;
    }
  }
}
