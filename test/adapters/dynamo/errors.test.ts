import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoJobStore, translateError } from '../../../adapters/dynamo/store.ts';
import { ConcurrencyError, PermanentError, TransientError } from '../../../core/errors.ts';
import { type LocalDynamo, makeDocClient, startDynalite } from '../../support/dynamo.ts';

const sdkError = (name: string, status?: number, code?: string) =>
  Object.assign(new Error(`${name} happened`), {
    name,
    ...(code ? { code } : {}),
    ...(status ? { $metadata: { httpStatusCode: status } } : {}),
  });

describe('translateError', () => {
  it.each([
    { name: 'ProvisionedThroughputExceededException', status: 400, expected: TransientError },
    { name: 'ThrottlingException', status: 400, expected: TransientError },
    { name: 'RequestLimitExceeded', status: 400, expected: TransientError },
    { name: 'InternalServerError', status: 500, expected: TransientError },
    { name: 'ServiceUnavailable', status: 503, expected: TransientError },
    { name: 'Error', status: undefined, code: 'ECONNREFUSED', expected: TransientError },
    { name: 'ResourceNotFoundException', status: 400, expected: PermanentError },
    { name: 'ValidationException', status: 400, expected: PermanentError },
    { name: 'AccessDeniedException', status: 403, expected: PermanentError },
  ])('treats $name (HTTP $status) as $expected.name', ({ name, status, code, expected }) => {
    const err = translateError('getJob', sdkError(name, status, code));
    expect(err).toBeInstanceOf(expected);
    expect(err.message).toContain(`store.getJob: ${name}`);
    expect((err as Error & { cause?: unknown }).cause).toBeInstanceOf(Error);
  });

  it('passes the store’s own conflict errors through unchanged', () => {
    const conflict = new ConcurrencyError('lost');
    expect(translateError('putJob', conflict)).toBe(conflict);
  });
});

describe('DynamoJobStore failures against real endpoints', () => {
  let dynamo: LocalDynamo;
  beforeAll(async () => {
    dynamo = await startDynalite();
  });
  afterAll(() => dynamo?.stop());

  it('reports an unreachable DynamoDB as TransientError after the SDK retries', async () => {
    const client = makeDocClient('http://127.0.0.1:9');
    const store = new DynamoJobStore({ client, tableName: 'absent' });
    await expect(store.getJob({ namespace: 'a', name: 'b' })).rejects.toBeInstanceOf(TransientError);
    client.destroy();
  });

  it('reports a missing table as PermanentError naming the operation', async () => {
    const client = makeDocClient(dynamo.endpoint);
    const store = new DynamoJobStore({ client, tableName: 'no-such-table' });
    const err = await store.listActiveJobs().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(String(err)).toMatch(/store\.listActiveJobs: ResourceNotFoundException/);
    client.destroy();
  });
});
