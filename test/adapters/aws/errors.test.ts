import { describe, expect, it } from 'vitest';
import { translateAwsError } from '../../../adapters/aws/errors.ts';
import { ConcurrencyError, NotFoundError, PermanentError, TransientError } from '../../../core/errors.ts';

const awsError = (name: string, status?: number, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${name} happened`), {
    name,
    ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
    ...extra,
  });

describe('translateAwsError', () => {
  it.each([
    { name: 'ResourceNotFoundException', status: 404, expected: NotFoundError },
    { name: 'ResourceNotFound', status: 400, expected: NotFoundError },
    { name: 'InternalFailure', status: 500, expected: TransientError },
    { name: 'TooManyRequestsException', status: 429, expected: TransientError },
    { name: 'ThrottlingException', status: 400, expected: TransientError },
    { name: 'ProvisionedThroughputExceededException', status: 400, expected: TransientError },
    { name: 'RequestLimitExceeded', status: 400, expected: TransientError },
    { name: 'InternalServerError', status: 500, expected: TransientError },
    { name: 'ServiceUnavailable', status: 503, expected: TransientError },
    { name: 'TimeoutError', status: undefined, expected: TransientError },
    { name: 'AccessDeniedException', status: 403, expected: PermanentError },
    { name: 'ValidationException', status: 400, expected: PermanentError },
  ])('treats $name (HTTP $status) as $expected.name', ({ name, status, expected }) => {
    const err = translateAwsError('eks:DescribeCluster', awsError(name, status));
    expect(err).toBeInstanceOf(expected);
    expect(err.message).toContain(`eks:DescribeCluster: ${name}: ${name} happened`);
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('treats a connection failure without an HTTP answer as transient', () => {
    expect(translateAwsError('op', awsError('Error', undefined, { code: 'ECONNREFUSED' }))).toBeInstanceOf(
      TransientError,
    );
  });

  it('treats an error the SDK marks retryable as transient whatever its status', () => {
    expect(
      translateAwsError('op', awsError('SomethingOdd', 400, { $retryable: { throttling: false } })),
    ).toBeInstanceOf(TransientError);
  });

  it('reports a missing resource of the adapter’s own infrastructure as permanent when asked', () => {
    const err = translateAwsError('store.getJob', awsError('ResourceNotFoundException', 400), {
      notFound: 'permanent',
    });
    expect(err).toBeInstanceOf(PermanentError);
  });

  it('passes errors that are already in the taxonomy through unchanged', () => {
    const conflict = new ConcurrencyError('lost');
    expect(translateAwsError('store.putJob', conflict)).toBe(conflict);
  });
});
