/**
 * Agent calls in flight at once per adapter (one Lambda invocation) unless configured
 * (`TRAINKEEPER_AGENT_CONCURRENCY`): measured by `npm run bench -- restart` (docs/benchmarks.md, "restart"),
 * and kept well below the API server's default in-flight limit for mutating requests (200), since a
 * `pods/proxy` POST counts as one.
 */
export const DEFAULT_AGENT_CONCURRENCY = 64;

/**
 * Bounded fan-out for the adapter's per-pod calls (creates, deletes, agent calls): at most `limit` calls in
 * flight, results in input order. Invariant: `fn` is called once per item; a rejection of one item does
 * not stop the others (callers get every result and decide).
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i] as T, i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  const workers = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return results;
}

/** Throws the first rejection of a settled batch (after every item ran), else returns the values. */
export function valuesOrThrow<R>(results: PromiseSettledResult<R>[]): R[] {
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<R>).value);
}

/**
 * A counting semaphore: at most `limit` functions run at once across every caller that shares it, the rest
 * wait in arrival order. The adapter keeps one for all its agent calls, so concurrent fan-outs (the sweep's
 * jobs in parallel, a refused call's status poll) share one limit instead of each taking its own, and a
 * call's timeout starts when it leaves the queue, not while it waits for a socket.
 *
 * Invariant: `active` ≤ `limit`; a slot is released exactly once per `run`, whether `fn` resolves or throws.
 */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`Limiter: limit must be a positive integer, got ${limit}`);
    }
  }

  /** Calls in flight right now. */
  get inFlight(): number {
    return this.active;
  }

  /** Runs `fn` when a slot is free and returns its result. */
  async run<R>(fn: () => Promise<R>): Promise<R> {
    if (this.active >= this.limit) await new Promise<void>((resolve) => this.waiting.push(resolve));
    else this.active++;
    try {
      return await fn();
    } finally {
      // Hand the slot straight to the next waiter (active stays the same), else free it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }
}
