import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { EventBridgePublisher, lifecycleDetailSchema } from '../../../adapters/aws/events.ts';
import { PermanentError, TransientError } from '../../../core/errors.ts';
import type { JobEvent } from '../../../core/job.ts';
import { LifecycleEvent, Reason } from '../../../core/reasons.ts';

// EventBridge has no local emulator: the SDK boundary is mocked, everything above it is real.
const eb = mockClient(EventBridgeClient);
afterEach(() => eb.reset());

const ref = { namespace: 'team-a', name: 'llama' };
const ev = (at: number, lifecycle?: string, details?: Record<string, unknown>): JobEvent => ({
  at,
  type: 'Warning',
  reason: Reason.WorkerCrash,
  message: `event at ${at}`,
  generation: 3,
  ...(lifecycle ? { lifecycle } : {}),
  ...(details ? { details } : {}),
});
const publisher = () =>
  new EventBridgePublisher({
    client: new EventBridgeClient({ region: 'us-east-1' }),
    eventBusName: 'tk-bus',
  });

describe('EventBridgePublisher', () => {
  it('publishes only lifecycle events, with source, detail-type and the documented detail', async () => {
    eb.on(PutEventsCommand).resolves({ FailedEntryCount: 0, Entries: [{ EventId: '1' }, { EventId: '2' }] });
    await publisher().publish(ref, [
      ev(1_700_000_000_000, LifecycleEvent.FaultDetected, {
        uid: 'u-1',
        level: 'process',
        detectionLatencySeconds: 1.5,
        pods: ['llama-worker-0-g3'],
      }),
      ev(1_700_000_000_500),
      ev(1_700_000_001_000, LifecycleEvent.RestartCompleted, { restartLatencySeconds: 12 }),
    ]);
    const calls = eb.commandCalls(PutEventsCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input.Entries).toEqual([
      {
        EventBusName: 'tk-bus',
        Source: 'trainkeeper',
        DetailType: 'FaultDetected',
        Time: new Date(1_700_000_000_000),
        Resources: [],
        Detail: JSON.stringify({
          version: 1,
          namespace: 'team-a',
          name: 'llama',
          uid: 'u-1',
          level: 'process',
          detectionLatencySeconds: 1.5,
          generation: 3,
          reason: 'WorkerCrash',
          message: 'event at 1700000000000',
          type: 'Warning',
          time: '2023-11-14T22:13:20.000Z',
          details: { pods: ['llama-worker-0-g3'] },
        }),
      },
      {
        EventBusName: 'tk-bus',
        Source: 'trainkeeper',
        DetailType: 'RestartCompleted',
        Time: new Date(1_700_000_001_000),
        Resources: [],
        Detail: JSON.stringify({
          version: 1,
          namespace: 'team-a',
          name: 'llama',
          restartLatencySeconds: 12,
          generation: 3,
          reason: 'WorkerCrash',
          message: 'event at 1700000001000',
          type: 'Warning',
          time: '2023-11-14T22:13:21.000Z',
        }),
      },
    ]);
    for (const e of calls[0]!.args[0].input.Entries ?? []) {
      expect(lifecycleDetailSchema.safeParse(JSON.parse(e.Detail!)).success).toBe(true);
    }
  });

  it('sends at most ten entries per call, in order', async () => {
    eb.on(PutEventsCommand).callsFake((input: { Entries: unknown[] }) => ({
      FailedEntryCount: 0,
      Entries: input.Entries.map((_, i) => ({ EventId: String(i) })),
    }));
    await publisher().publish(
      ref,
      Array.from({ length: 23 }, (_, i) => ev(i, LifecycleEvent.JobSubmitted)),
    );
    const sizes = eb.commandCalls(PutEventsCommand).map((c) => c.args[0].input.Entries?.length);
    expect(sizes).toEqual([10, 10, 3]);
    const times = eb
      .commandCalls(PutEventsCommand)
      .flatMap((c) => c.args[0].input.Entries!.map((e) => e.Time!.getTime()));
    expect(times).toEqual(Array.from({ length: 23 }, (_, i) => i));
  });

  it('makes no call when no event is a lifecycle event', async () => {
    await publisher().publish(ref, [ev(1), ev(2)]);
    expect(eb.commandCalls(PutEventsCommand)).toHaveLength(0);
  });

  it('retries only the failed entries once and succeeds when they go through', async () => {
    eb.on(PutEventsCommand)
      .resolvesOnce({
        FailedEntryCount: 1,
        Entries: [
          { EventId: 'a' },
          { ErrorCode: 'InternalFailure', ErrorMessage: 'try again' },
          { EventId: 'c' },
        ],
      })
      .resolves({ FailedEntryCount: 0, Entries: [{ EventId: 'b' }] });
    await publisher().publish(ref, [ev(1, 'JobSubmitted'), ev(2, 'FaultDetected'), ev(3, 'RestartStarted')]);
    const calls = eb.commandCalls(PutEventsCommand);
    expect(calls.map((c) => c.args[0].input.Entries!.map((e) => e.DetailType))).toEqual([
      ['JobSubmitted', 'FaultDetected', 'RestartStarted'],
      ['FaultDetected'],
    ]);
  });

  it('fails with TransientError when entries still fail after the retry', async () => {
    eb.on(PutEventsCommand).resolves({
      FailedEntryCount: 1,
      Entries: [{ ErrorCode: 'ThrottlingException' }],
    });
    const err = await publisher()
      .publish(ref, [ev(1, 'JobFailed')])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransientError);
    expect(String(err)).toMatch(/ThrottlingException/);
    expect(eb.commandCalls(PutEventsCommand)).toHaveLength(2);
  });

  it.each([
    { name: 'ThrottlingException', status: 400, expected: TransientError },
    { name: 'InternalException', status: 500, expected: TransientError },
    { name: 'AccessDeniedException', status: 403, expected: PermanentError },
  ])('translates an SDK $name ($status) into $expected.name', async ({ name, status, expected }) => {
    eb.on(PutEventsCommand).rejects(
      Object.assign(new Error('boom'), { name, $metadata: { httpStatusCode: status } }),
    );
    await expect(publisher().publish(ref, [ev(1, 'JobFailed')])).rejects.toBeInstanceOf(expected);
  });
});
