/** Thrown when the queue for a limited resource is full. */
export class QueueFull extends Error {
  override readonly name = 'QueueFull';
}

/**
 * Runs at most `concurrency` tasks at once and queues up to `maxQueue` more; beyond that it
 * refuses at once. Used for argon2, which shares libuv's small thread pool with the signing of
 * tokens: without a bound, a flood of wrong secrets would take every thread and every core.
 */
export class Limiter {
  #running = 0;
  readonly #queue: (() => void)[] = [];

  constructor(
    readonly concurrency: number,
    readonly maxQueue: number,
  ) {}

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#running >= this.concurrency) {
      if (this.#queue.length >= this.maxQueue) throw new QueueFull('too many requests waiting');
      await new Promise<void>((resolve) => this.#queue.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await task();
    } finally {
      const next = this.#queue.shift();
      // The slot passes straight to the next waiter, so #running stays as it is.
      if (next) next();
      else this.#running--;
    }
  }

  get queued(): number {
    return this.#queue.length;
  }
}
