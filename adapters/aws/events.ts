/**
 * `EventBridgePublisher`: lifecycle events to the stage's EventBridge bus (source `trainkeeper`, detail-type =
 * the `LifecycleEvent` name, detail = `LifecycleDetail`, documented in docs/events.md).
 *
 * Invariants: only events with `lifecycle` set are published; at most 10 entries per PutEvents call (the API
 * limit); entries the service reports as failed are retried once, then the call fails with `TransientError` so
 * the trigger is retried (consumers must tolerate duplicates: EventBridge is at-least-once anyway). SDK
 * errors (after the SDK's retries) are translated by `translateAwsError` (errors.ts): throttling/5xx are
 * `TransientError`, others `PermanentError`.
 */
import {
  type EventBridgeClient,
  PutEventsCommand,
  type PutEventsCommandOutput,
  type PutEventsRequestEntry,
} from '@aws-sdk/client-eventbridge';
import { z } from 'zod';
import { TransientError } from '../../core/errors.ts';
import { type JobEvent, RESTART_LEVELS, type RestartLevel } from '../../core/job.ts';
import type { EventPublisher, JobRef } from '../../core/ports.ts';
import { translateAwsError } from './errors.ts';

/** EventBridge `source` of every TrainKeeper event. */
export const EVENT_SOURCE = 'trainkeeper';
/** PutEvents accepts at most 10 entries per call. */
export const MAX_ENTRIES_PER_CALL = 10;
/** Messages longer than this are cut (an entry must stay far below EventBridge's 256 KB). */
export const MAX_MESSAGE_CHARS = 4096;

/**
 * The `detail` of every TrainKeeper lifecycle event (schema version 1). Fields beyond the job ref and the
 * event's own are taken from `JobEvent.details` when present and of the right type; `details` carries the rest.
 */
export const lifecycleDetailSchema = z.object({
  version: z.literal(1),
  namespace: z.string(),
  name: z.string(),
  uid: z.string().optional(),
  generation: z.number().int(),
  reason: z.string(),
  message: z.string(),
  type: z.enum(['Normal', 'Warning']),
  /** RFC 3339 time of the event. */
  time: z.string(),
  level: z.enum(RESTART_LEVELS).optional(),
  detectionLatencySeconds: z.number().optional(),
  restartLatencySeconds: z.number().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});
/** The detail of a lifecycle event. */
export type LifecycleDetail = z.infer<typeof lifecycleDetailSchema>;

const PROMOTED = ['uid', 'level', 'detectionLatencySeconds', 'restartLatencySeconds'] as const;

/** Builds the detail of one event (pure; exported for tests and for consumers' fixtures). */
export function lifecycleDetail(ref: JobRef, event: JobEvent): LifecycleDetail {
  const details = { ...(event.details ?? {}) };
  const promoted: Partial<LifecycleDetail> = {};
  const uid = details.uid;
  if (typeof uid === 'string') promoted.uid = uid;
  const level = details.level;
  if ((RESTART_LEVELS as readonly unknown[]).includes(level)) promoted.level = level as RestartLevel;
  for (const key of ['detectionLatencySeconds', 'restartLatencySeconds'] as const) {
    const v = details[key];
    if (typeof v === 'number' && Number.isFinite(v)) promoted[key] = v;
  }
  for (const key of PROMOTED) if (key in promoted) delete details[key];
  return {
    version: 1,
    namespace: ref.namespace,
    name: ref.name,
    ...promoted,
    generation: event.generation,
    reason: event.reason,
    message:
      event.message.length > MAX_MESSAGE_CHARS
        ? `${event.message.slice(0, MAX_MESSAGE_CHARS)}…`
        : event.message,
    type: event.type,
    time: new Date(event.at).toISOString(),
    ...(Object.keys(details).length ? { details } : {}),
  };
}

/** The PutEvents entries for a job's events: lifecycle events only, in order. */
export function toEntries(ref: JobRef, events: JobEvent[], eventBusName: string): PutEventsRequestEntry[] {
  return events
    .filter(
      (e): e is JobEvent & { lifecycle: string } => typeof e.lifecycle === 'string' && e.lifecycle !== '',
    )
    .map((e) => ({
      EventBusName: eventBusName,
      Source: EVENT_SOURCE,
      DetailType: e.lifecycle,
      Time: new Date(e.at),
      Resources: [],
      Detail: JSON.stringify(lifecycleDetail(ref, e)),
    }));
}

/** Options of `EventBridgePublisher`. */
export interface EventBridgePublisherOptions {
  client: EventBridgeClient;
  /** The stage's bus name or ARN. */
  eventBusName: string;
}

/** `EventPublisher` on EventBridge PutEvents. */
export class EventBridgePublisher implements EventPublisher {
  constructor(private readonly options: EventBridgePublisherOptions) {}

  async publish(ref: JobRef, events: JobEvent[]): Promise<void> {
    const entries = toEntries(ref, events, this.options.eventBusName);
    for (let i = 0; i < entries.length; i += MAX_ENTRIES_PER_CALL) {
      await this.putBatch(entries.slice(i, i + MAX_ENTRIES_PER_CALL));
    }
  }

  private async putBatch(batch: PutEventsRequestEntry[]): Promise<void> {
    let pending = batch;
    for (let attempt = 0; attempt < 2 && pending.length > 0; attempt++) {
      let out: PutEventsCommandOutput;
      try {
        out = await this.options.client.send(new PutEventsCommand({ Entries: pending }));
      } catch (err) {
        // A missing bus is a deployment fault, not a missing job: PermanentError.
        throw translateAwsError('events.publish', err, { notFound: 'permanent' });
      }
      if (!out.FailedEntryCount) return;
      // Entries answer positionally: a failed one has ErrorCode set.
      const failed = pending.filter((_, i) => out.Entries?.[i]?.ErrorCode);
      if (attempt === 1 || failed.length === 0) {
        const codes = (out.Entries ?? []).flatMap((r) =>
          r.ErrorCode ? [`${r.ErrorCode}: ${r.ErrorMessage ?? ''}`] : [],
        );
        throw new TransientError(
          `events.publish: ${out.FailedEntryCount} of ${pending.length} entries failed after a retry (${codes.join('; ')})`,
        );
      }
      pending = failed;
    }
  }
}
