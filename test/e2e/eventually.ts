/**
 * Polling for what the control plane emits after its state write: events and counters follow the write by
 * a few milliseconds (reconcile flushes them after the write, before the cluster actions) and processes
 * follow the cluster actions, so a scenario that has just seen a new phase re-reads them until they agree
 * instead of racing the flush.
 */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls `read` until `check` accepts its value (returns it) or `timeoutMs` passes; then runs `check` once
 * more so the failure is the assertion's own message. `check` asserts (throws) when the value is not there yet.
 */
export async function eventually<T>(
  read: () => Promise<T>,
  check: (value: T) => void,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    try {
      check(value);
      return value;
    } catch (err) {
      if (Date.now() >= deadline) throw err;
    }
    await sleep(200);
  }
}

/**
 * A request as a client (the CLI) makes it: a 503 means the job's record was being written by another
 * trigger at that moment (the API's bounded write retries lost), so it is retried after `retry-after`.
 */
export async function requestRetrying(url: string, init: RequestInit = {}, attempts = 10): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, init);
    if (res.status !== 503 || attempt >= attempts) return res;
    const seconds = Number(res.headers.get('retry-after') ?? '1');
    await sleep(Math.min(Number.isFinite(seconds) ? seconds : 1, 2) * 1000);
  }
}
