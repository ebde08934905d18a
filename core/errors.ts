/**
 * The error taxonomy that decides retries (CONVENTIONS.md §8). Adapters translate vendor errors into these;
 * `core/` never sees SDK types.
 *
 * - Retryable errors are thrown out of a handler so the platform retries the trigger.
 * - Terminal errors are recorded (timeline/metrics) and the handler returns normally.
 */
export abstract class TrainKeeperError extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A conditional write lost to a concurrent writer: re-read, re-decide, bounded retry. */
export class ConcurrencyError extends TrainKeeperError {
  readonly retryable = true;
}

/** Throttling, 5xx, timeouts from AWS or Kubernetes after the adapter's own bounded retries. */
export class TransientError extends TrainKeeperError {
  readonly retryable = true;
}

/** The thing asked for does not exist (job, pod, node). */
export class NotFoundError extends TrainKeeperError {
  readonly retryable = false;
}

/** A create for something that already exists (job name taken, idempotency key reused with another body). */
export class AlreadyExistsError extends TrainKeeperError {
  readonly retryable = false;
}

/** Input that can never succeed (invalid manifest, forbidden namespace, malformed payload). */
export class ValidationError extends TrainKeeperError {
  readonly retryable = false;
  constructor(
    message: string,
    readonly issues: { path: string; message: string }[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The caller may not do this (namespace not allowed, pod security level exceeded). */
export class ForbiddenError extends TrainKeeperError {
  readonly retryable = false;
}

/** A non-retryable failure from a dependency (4xx other than the above). */
export class PermanentError extends TrainKeeperError {
  readonly retryable = false;
}

export const isRetryable = (err: unknown): boolean => err instanceof TrainKeeperError && err.retryable;
