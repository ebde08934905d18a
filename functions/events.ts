/**
 * The `events` Lambda (EventBridge): two kinds of event, each `detail` parsed with zod.
 *
 * 1. SageMaker HyperPod cluster events (`source: aws.sagemaker`, `detail-type: SageMaker HyperPod Cluster
 *    Event`, hyperpod-spec §12). An `Instance` event is mapped to its Kubernetes node (the node whose
 *    providerID/name carries the EC2 instance id, as `cluster.listNodes()` reports it; else the HyperPod
 *    node name `hyperpod-<instanceId>`), then to the active jobs with a pod on that node, each of which
 *    gets a `NodeHealth` observation (`source: sagemaker`). Health from `EventLevel` + `Description`
 *    (`healthFromClusterEvent`):
 *
 *    | EventLevel | Description mentions | health |
 *    |---|---|---|
 *    | Error / Critical / Fatal / Warning | reboot | `UnschedulablePendingReboot` |
 *    | any level | replace / replacement | `UnschedulablePendingReplacement` |
 *    | Info | reboot (started/initiated/in progress) | `UnschedulablePendingReboot` |
 *    | Error / Critical / Fatal | anything else (health check failed, hardware fault, …) | `Unschedulable` |
 *    | Info | healthy / passed / succeeded / Schedulable / InService | `Schedulable` |
 *    | otherwise (Warning without reboot/replace, other Info) | — | ignored |
 *
 *    Events for another cluster (a HyperPod deployment names its cluster) and non-Instance events are
 *    ignored. A SageMaker reboot/replacement takes the node away, so the job's pod there must move.
 * 2. Our own bus's commands (`source: trainkeeper.cli`, `detail-type: TrainKeeper Command`, detail
 *    `{namespace, name, command}`) → a `Command` observation, as the API's routes do. EventBridge carries
 *    no caller identity: whoever may `events:PutEvents` on the stage's bus may command every job (that IAM
 *    permission is the control, docs/deploy.md). So a command's `by` is what the detail *claims*; it is
 *    logged as `claimedBy` and never recorded as the actor: the command is recorded as `by: "eventbridge"`
 *    (`BUS_PRINCIPAL`).
 *
 * Jobs are independent: one failing reconcile does not stop the others; a retryable failure is thrown at
 * the end so EventBridge retries the event (reconcile is idempotent, so the retry is safe).
 */
import type { EventBridgeEvent, Handler } from 'aws-lambda';
import { z } from 'zod';
import { jobKey } from '../core/job.ts';
import { Metric } from '../core/metrics.ts';
import type { Command, NodeHealthStatus } from '../core/observations.ts';
import type { JobRef } from '../core/ports.ts';
import { lambdaHandler } from './shell/deps.ts';
import {
  countSafely,
  type Deps,
  forEachJob,
  type ReconcileOutcome,
  reconcile,
  throwIfAnyRetryable,
} from './shell/reconcile.ts';
import { validateRules } from './shell/rule-input.ts';

/** The EventBridge envelope (fields every event carries). */
export const EventBridgeEnvelope = z.object({
  version: z.string().optional(),
  id: z.string(),
  'detail-type': z.string(),
  source: z.string(),
  account: z.string().optional(),
  time: z.string(),
  region: z.string().optional(),
  resources: z.array(z.string()).default([]),
  detail: z.unknown(),
});

export const HYPERPOD_EVENT = {
  source: 'aws.sagemaker',
  detailType: 'SageMaker HyperPod Cluster Event',
} as const;
export const COMMAND_EVENT = { source: 'trainkeeper.cli', detailType: 'TrainKeeper Command' } as const;

/** `detail` of a SageMaker HyperPod cluster event (ClusterEventDetail). */
export const HyperPodClusterEventDetail = z.object({
  EventDetails: z.object({
    EventId: z.string(),
    ClusterArn: z.string().optional(),
    ClusterName: z.string(),
    InstanceGroupName: z.string().optional(),
    InstanceId: z.string().optional(),
    ResourceType: z.enum(['Cluster', 'InstanceGroup', 'Instance']),
    EventTime: z.union([z.number(), z.string()]),
    EventLevel: z.string().optional(),
    Description: z.string().optional(),
    EventDetails: z.object({ EventMetadata: z.unknown().optional() }).partial().optional(),
  }),
});
export type HyperPodClusterEventDetail = z.infer<typeof HyperPodClusterEventDetail>;

/** `detail` of a TrainKeeper command put on the stage's bus by the CLI. */
export const CommandEventDetail = z.object({
  namespace: z.string().min(1),
  name: z.string().min(1),
  command: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('Cancel'), by: z.string().optional() }),
    z.object({
      kind: z.literal('Restart'),
      level: z.enum(['process', 'job']).default('process'),
      by: z.string().optional(),
    }),
    z.object({ kind: z.literal('UpdateRules'), rules: z.unknown(), by: z.string().optional() }),
    z.object({ kind: z.literal('Suspend'), by: z.string().optional() }),
    z.object({ kind: z.literal('Resume'), by: z.string().optional() }),
  ]),
});

/** Who a bus command is recorded as coming from (the bus, never the detail's self-declared `by`). */
export const BUS_PRINCIPAL = 'eventbridge';

/** What one event did. */
export interface EventsOutcome {
  status: 'applied' | 'ignored' | 'malformed';
  reason?: string;
  jobs: { ref: JobRef; status: ReconcileOutcome['status'] | 'failed' }[];
}

/** The node health a HyperPod cluster event implies (table in the module comment); undefined = no signal. */
export function healthFromClusterEvent(detail: HyperPodClusterEventDetail): NodeHealthStatus | undefined {
  const d = detail.EventDetails;
  if (d.ResourceType !== 'Instance' || !d.InstanceId) return undefined;
  const level = (d.EventLevel ?? '').toLowerCase();
  const text = (d.Description ?? '').toLowerCase();
  const severe = level === 'error' || level === 'critical' || level === 'fatal';
  const reboot = /\breboot/.test(text);
  const replace = /\breplac(e|ed|ing|ement)\b/.test(text);
  if (replace) return 'UnschedulablePendingReplacement';
  if (reboot && (severe || level === 'warning')) return 'UnschedulablePendingReboot';
  if (reboot && level === 'info' && /(start|initiat|in progress|progress)/.test(text))
    return 'UnschedulablePendingReboot';
  if (severe) return 'Unschedulable';
  if (level === 'info' && /\b(healthy|passed|succeeded|schedulable|inservice|in service)\b/.test(text)) {
    return 'Schedulable';
  }
  return undefined;
}

/** Builds the handler over the given ports. */
export function makeHandler(deps: Deps): (event: unknown) => Promise<EventsOutcome> {
  return async (raw) => {
    const envelope = EventBridgeEnvelope.safeParse(raw);
    if (!envelope.success) return malformed(deps, 'eventbridge-envelope', 'not an EventBridge event');
    const event = envelope.data;
    if (event.source === HYPERPOD_EVENT.source && event['detail-type'] === HYPERPOD_EVENT.detailType) {
      const detail = HyperPodClusterEventDetail.safeParse(event.detail);
      if (!detail.success) return malformed(deps, 'hyperpod-event', issuesText(detail.error, 'detail'));
      return onClusterEvent(deps, detail.data);
    }
    if (event.source === COMMAND_EVENT.source && event['detail-type'] === COMMAND_EVENT.detailType) {
      const detail = CommandEventDetail.safeParse(event.detail);
      if (!detail.success) return malformed(deps, 'command-event', issuesText(detail.error, 'detail'));
      return onCommand(deps, detail.data, Date.parse(event.time), event.id);
    }
    return {
      status: 'ignored',
      reason: `no handling for ${event.source} / ${event['detail-type']}`,
      jobs: [],
    };
  };
}

async function onClusterEvent(deps: Deps, detail: HyperPodClusterEventDetail): Promise<EventsOutcome> {
  const d = detail.EventDetails;
  const cluster = deps.config.cluster;
  if (
    cluster.kind === 'hyperpod' &&
    cluster.name !== d.ClusterName &&
    !d.ClusterArn?.endsWith(`/${cluster.name}`)
  ) {
    return { status: 'ignored', reason: `event for cluster ${d.ClusterName}`, jobs: [] };
  }
  const health = healthFromClusterEvent(detail);
  if (!health || !d.InstanceId) {
    return {
      status: 'ignored',
      reason: `no node-health signal in ${d.EventLevel ?? '?'}: ${d.Description ?? ''}`,
      jobs: [],
    };
  }
  const instanceId = d.InstanceId;
  const nodes = await deps.cluster.listNodes();
  const node = nodes.find((n) => n.instanceId === instanceId)?.name ?? `hyperpod-${instanceId}`;
  const at = typeof d.EventTime === 'number' ? d.EventTime : Date.parse(d.EventTime);
  const when = Number.isFinite(at) ? at : deps.clock.now();

  const refs = await deps.store.listActiveJobs();
  const jobs = await Promise.all(refs.map((ref) => deps.store.getJob(ref)));
  const affected = jobs
    .filter((j) => j?.pods.some((p) => p.nodeName === node))
    .map((j) => ({ namespace: j!.namespace, name: j!.name }));
  deps.log.info('events: node health from SageMaker', {
    instanceId,
    node,
    health,
    jobs: affected.map(jobKey),
  });
  return reconcileEach(deps, affected, () => [
    { type: 'NodeHealth', node, health, instanceId, at: when, source: 'sagemaker' },
  ]);
}

async function onCommand(
  deps: Deps,
  detail: z.infer<typeof CommandEventDetail>,
  eventTime: number,
  eventId: string,
): Promise<EventsOutcome> {
  const ref: JobRef = { namespace: detail.namespace, name: detail.name };
  const c = detail.command;
  const by = BUS_PRINCIPAL;
  if (c.by !== undefined) {
    deps.log.info('events: bus command; its self-declared by is not trusted', {
      job: jobKey(ref),
      command: c.kind,
      claimedBy: c.by,
    });
  }
  let command: Command;
  switch (c.kind) {
    case 'Restart':
      command = { kind: 'Restart', level: c.level, by };
      break;
    case 'UpdateRules': {
      const rules = validateRules(c.rules);
      if (!rules.ok) {
        return malformed(
          deps,
          'command-event',
          rules.errors.map((e) => `${e.path}: ${e.message}`).join('; '),
        );
      }
      command = { kind: 'UpdateRules', rules: rules.rules, by };
      break;
    }
    default:
      command = { kind: c.kind, by };
  }
  const at = Number.isFinite(eventTime) ? eventTime : deps.clock.now();
  // The event id is the command's id: EventBridge redelivers an event with the same id, so a redelivery
  // is a replay (the record keeps the ids it applied), while two commands sent at one instant are two.
  return reconcileEach(deps, [ref], () => [{ type: 'Command', command, at, id: `bus#${eventId}` }]);
}

/** One reconcile per job, one after another; a retryable failure of any fails the event after all ran. */
async function reconcileEach(
  deps: Deps,
  refs: JobRef[],
  observations: () => Parameters<typeof reconcile>[2],
): Promise<EventsOutcome> {
  const runs = await forEachJob(deps, 'events', refs, (ref) => reconcile(deps, ref, observations()));
  throwIfAnyRetryable('events', runs);
  return {
    status: 'applied',
    jobs: runs.map((run) => ({ ref: run.ref, status: run.ok ? run.value.status : 'failed' })),
  };
}

async function malformed(deps: Deps, kind: string, detail: string): Promise<EventsOutcome> {
  deps.log.warn('events: skipped malformed event', { kind, detail });
  await countSafely(deps, [{ name: Metric.malformedEventsSkipped, labels: { kind }, by: 1 }]);
  return { status: 'malformed', reason: detail, jobs: [] };
}

const issuesText = (error: z.ZodError, prefix: string): string =>
  error.issues.map((i) => `${[prefix, ...i.path.map(String)].join('.')}: ${i.message}`).join('; ');

/**
 * The Lambda entry point (deps from the environment, built once per instance: functions/shell/deps.ts),
 * typed as EventBridge calls it (any detail type); zod still checks the event.
 */
export const handler: Handler<EventBridgeEvent<string, unknown>, EventsOutcome> = lambdaHandler(makeHandler);
