/**
 * The one translation of AWS SDK errors into the error taxonomy (core/errors.ts), for every adapter that
 * calls AWS (DynamoDB, EventBridge, SageMaker, EKS). The SDK has already run its own retries when an error
 * reaches us, so what is left is sorted, not retried here:
 *
 * | the error | becomes |
 * |---|---|
 * | already a taxonomy error (the adapter's own `ConcurrencyError`, …) | itself |
 * | `ResourceNotFound`, `ResourceNotFoundException`, HTTP 404 | `NotFoundError` (or `PermanentError`, see below) |
 * | throttling or a service-side failure by name, `$retryable`, HTTP 429 or 5xx | `TransientError` |
 * | no HTTP answer at all (connection refused/reset, DNS, timeout, abort) | `TransientError` |
 * | any other 4xx (validation, access denied, …) | `PermanentError` |
 *
 * Invariant: the message reads `<operation>: <error name>: <error message>`; the SDK error is the `cause`.
 */
import { NotFoundError, PermanentError, TrainKeeperError, TransientError } from '../../core/errors.ts';

/** Error names (across the services we call) that mean "try again later". */
const TRANSIENT_NAMES =
  /Throttl|TooManyRequests|RequestLimitExceeded|ProvisionedThroughputExceeded|LimitExceededException|TransactionInProgress|InternalServerError|InternalException|InternalFailure|ServiceUnavailable|Timeout|AbortError/i;

/** Connection-level error codes (Node's and undici's): the request may never have reached AWS. */
const NETWORK_CODE = /^(ECONN|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|UND_ERR)/;

const NOT_FOUND_NAMES = new Set(['ResourceNotFound', 'ResourceNotFoundException']);

/** Options of `translateAwsError`. */
export interface TranslateAwsErrorOptions {
  /**
   * What a missing resource means. `not-found` (default): the thing asked for does not exist (a cluster).
   * `permanent`: it is the adapter's own infrastructure (DynamoDB's ResourceNotFoundException names a
   * missing table: a deployment fault, never "no such job").
   */
  notFound?: 'not-found' | 'permanent';
}

/** Translates an AWS SDK error of `operation` (e.g. `eks:DescribeCluster`, `store.getJob`); see the table. */
export function translateAwsError(
  operation: string,
  err: unknown,
  options: TranslateAwsErrorOptions = {},
): TrainKeeperError {
  if (err instanceof TrainKeeperError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  const name = typeof e.name === 'string' ? e.name : 'Error';
  const status = e.$metadata?.httpStatusCode;
  const message = `${operation}: ${name}: ${typeof e.message === 'string' ? e.message : String(err)}`;
  if (NOT_FOUND_NAMES.has(name) || status === 404) {
    return options.notFound === 'permanent'
      ? new PermanentError(message, { cause: err })
      : new NotFoundError(message, { cause: err });
  }
  const network = typeof e.code === 'string' && NETWORK_CODE.test(e.code);
  if (
    status === undefined ||
    status === 429 ||
    status >= 500 ||
    e.$retryable ||
    network ||
    TRANSIENT_NAMES.test(name)
  ) {
    return new TransientError(message, { cause: err });
  }
  return new PermanentError(message, { cause: err });
}
