/**
 * How the Kubernetes adapter retries and how it translates Kubernetes failures into the error taxonomy
 * (core/errors.ts), plus the call/error counters the bench and the metrics read.
 *
 * Policy: throttling (429, honouring Retry-After), 5xx and connection-level failures are retried with
 * jittered exponential backoff (p-retry), at most `retries` times; once spent they become a
 * TransientError (the trigger fails and the platform retries it; the next reconcile converges). Any other
 * 4xx is final on the first try: 404 → NotFoundError, 409 → AlreadyExistsError, 401/403 → ForbiddenError,
 * others → PermanentError. Callers that treat 404/409 as success catch those.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import pRetry from 'p-retry';
import {
  AlreadyExistsError,
  ForbiddenError,
  NotFoundError,
  PermanentError,
  type TrainKeeperError,
  TransientError,
} from '../../core/errors.ts';

/** Bounds of the retry loop. `retries` = extra tries after the first. */
export interface RetryPolicy {
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
  /** A server's Retry-After is honoured up to this. */
  maxRetryAfterMs: number;
}

/** 4 tries in all, 100 ms → 2 s jittered backoff, Retry-After up to 10 s. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  retries: 3,
  minDelayMs: 100,
  maxDelayMs: 2_000,
  maxRetryAfterMs: 10_000,
};

/** A failed Kubernetes call, reduced to what decides retries. */
export type KubeFailure =
  | { kind: 'http'; status: number; retryAfterSeconds?: number; message: string }
  | { kind: 'network'; code: string; message: string }
  | { kind: 'timeout'; message: string }
  | { kind: 'other'; message: string };

const RETRYABLE_NETWORK = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
]);

/** Parses a Retry-After header given in seconds (the form the API server sends). */
export function parseRetryAfter(value: unknown): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string' && typeof text !== 'number') return undefined;
  const n = Number(text);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

const headerOf = (headers: unknown, name: string): unknown => {
  if (!headers || typeof headers !== 'object') return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
};

/**
 * Reduces whatever client-node (ApiException with `code`/`headers`/`body`), node-fetch (FetchError with
 * `code`) or node:http threw into a KubeFailure. Never throws.
 */
export function classifyError(err: unknown): KubeFailure {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; headers?: unknown; body?: unknown; message?: unknown; name?: unknown };
    const message = typeof e.message === 'string' ? e.message : String(err);
    if (typeof e.code === 'number') {
      const retryAfterSeconds = parseRetryAfter(headerOf(e.headers, 'retry-after'));
      return {
        kind: 'http',
        status: e.code,
        message: statusMessage(e.body) ?? message,
        ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
      };
    }
    if (e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'ETIMEDOUT') {
      return { kind: 'timeout', message };
    }
    const cause = (err as { cause?: { code?: unknown } }).cause;
    const code =
      typeof e.code === 'string' ? e.code : typeof cause?.code === 'string' ? cause.code : undefined;
    if (code) return { kind: 'network', code, message };
    return { kind: 'other', message };
  }
  return { kind: 'other', message: String(err) };
}

/** The `message` of a Kubernetes Status body (JSON string or object), if any. */
function statusMessage(body: unknown): string | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body.length > 0 ? body.slice(0, 500) : undefined;
    }
  }
  const m = (value as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : undefined;
}

/** True for 429, 5xx and connection-level failures: worth another try. */
export function isRetryableFailure(f: KubeFailure): boolean {
  if (f.kind === 'http') return f.status === 429 || f.status >= 500;
  if (f.kind === 'network') return RETRYABLE_NETWORK.has(f.code);
  return f.kind === 'timeout';
}

/** The metric label for a failure: the HTTP status, the network error code, or `timeout`/`error`. */
export function failureCode(f: KubeFailure): string {
  if (f.kind === 'http') return String(f.status);
  if (f.kind === 'network') return f.code;
  return f.kind === 'timeout' ? 'timeout' : 'error';
}

/** The taxonomy error for a final failure of `operation` (see the module comment). */
export function translateFailure(operation: string, f: KubeFailure, cause: unknown): TrainKeeperError {
  const what = `kubernetes ${operation}: ${failureCode(f)} ${f.message}`;
  if (isRetryableFailure(f)) return new TransientError(what, { cause });
  if (f.kind !== 'http') return new PermanentError(what, { cause });
  if (f.status === 404) return new NotFoundError(what, { cause });
  if (f.status === 409) return new AlreadyExistsError(what, { cause });
  if (f.status === 401 || f.status === 403) return new ForbiddenError(what, { cause });
  return new PermanentError(what, { cause });
}

/**
 * Counts API calls (every attempt, by operation) and API errors (by operation and code). One instance per
 * adapter; the bench reads `totalCalls()`, the metrics read `errors()` (`trainkeeper_kubernetes_api_errors_total`).
 */
export class KubeApiStats {
  private readonly callCounts = new Map<string, number>();
  private readonly errorCounts = new Map<string, { operation: string; code: string; count: number }>();

  recordCall(operation: string): void {
    this.callCounts.set(operation, (this.callCounts.get(operation) ?? 0) + 1);
  }

  recordError(operation: string, code: string): void {
    const key = `${operation}\u0000${code}`;
    const entry = this.errorCounts.get(key) ?? { operation, code, count: 0 };
    entry.count += 1;
    this.errorCounts.set(key, entry);
  }

  /** Calls by operation. */
  calls(): Record<string, number> {
    return Object.fromEntries(this.callCounts);
  }

  totalCalls(): number {
    let n = 0;
    for (const v of this.callCounts.values()) n += v;
    return n;
  }

  /** Errors by (operation, code), sorted for stable output. */
  errors(): { operation: string; code: string; count: number }[] {
    return [...this.errorCounts.values()]
      .map((e) => ({ ...e }))
      .sort((a, b) => a.operation.localeCompare(b.operation) || a.code.localeCompare(b.code));
  }

  reset(): void {
    this.callCounts.clear();
    this.errorCounts.clear();
  }
}

/**
 * Runs `call` with the policy: counts every attempt and error, waits out Retry-After on 429, retries
 * failures that `retryable` accepts (default `isRetryableFailure`), and throws the translated taxonomy
 * error when it gives up. p-retry computes each delay itself and takes no per-attempt override, so a
 * server's Retry-After is waited out in `onFailedAttempt` (capped by `maxRetryAfterMs`) before p-retry's
 * own jittered delay.
 */
export async function withRetries<T>(
  operation: string,
  call: () => Promise<T>,
  options: { policy: RetryPolicy; stats: KubeApiStats; retryable?: (f: KubeFailure) => boolean },
): Promise<T> {
  const { policy, stats } = options;
  const retryable = options.retryable ?? isRetryableFailure;
  let last: { failure: KubeFailure; error: unknown } | undefined;
  try {
    return await pRetry(
      async () => {
        stats.recordCall(operation);
        try {
          return await call();
        } catch (error) {
          const failure = classifyError(error);
          stats.recordError(operation, failureCode(failure));
          last = { failure, error };
          throw error instanceof Error ? error : new Error(String(error));
        }
      },
      {
        retries: policy.retries,
        minTimeout: policy.minDelayMs,
        maxTimeout: policy.maxDelayMs,
        factor: 2,
        randomize: true,
        shouldRetry: () => (last ? retryable(last.failure) : false),
        onFailedAttempt: async ({ retriesLeft }) => {
          const f = last?.failure;
          if (
            retriesLeft > 0 &&
            f &&
            retryable(f) &&
            f.kind === 'http' &&
            f.status === 429 &&
            f.retryAfterSeconds !== undefined
          ) {
            await sleep(Math.min(f.retryAfterSeconds * 1000, policy.maxRetryAfterMs));
          }
        },
      },
    );
  } catch (error) {
    const failure = last?.failure ?? classifyError(error);
    throw translateFailure(operation, failure, last?.error ?? error);
  }
}
