/**
 * The API contract shared by the `api` handler and the CLI: problem documents and the job document the API
 * returns (and the CLI renders): a `HyperPodPyTorchJob`-shaped object whose
 * `status` uses HyperPod's status field names where one exists (hyperpod-spec §2.4) and TrainKeeper's
 * own names for the rest. Times are RFC 3339 strings; latencies are milliseconds. The JSON schema is
 * documented in functions/README.md — the CLI depends on it, so change it only additively.
 */
import type { JobEvent, JobRecord } from '../job.ts';
import { toManifest } from '../spec/manifest.ts';

/** One `{path, message}` of a problem document: the same shape as a manifest `FieldIssue`. */
export interface ProblemIssue {
  path: string;
  message: string;
}

/** RFC 9457 problem document, with `errors` listing every field problem. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors: ProblemIssue[];
}

/** Base of problem `type` URIs (documented in functions/README.md). */
export const PROBLEM_BASE = 'https://trainkeeper.dev/problems/';

const iso = (ms: number | undefined): string | undefined =>
  ms === undefined ? undefined : new Date(ms).toISOString();

/** Restart budgets still available under `runPolicy`; `null` = unlimited. */
export interface Budgets {
  processRestartsLeft: number | null;
  fullJobRestartsLeft: number | null;
  restartsBeforeFullJobRestartLeft: number | null;
}

/** Budgets left, from the spec's limits and the job's durable counters (never negative). */
export function budgetsOf(job: JobRecord): Budgets {
  const rp = job.spec.runPolicy;
  const left = (limit: number | undefined, used: number) =>
    limit === undefined ? null : Math.max(0, limit - used);
  return {
    processRestartsLeft: left(rp.jobMaxRetryCount, job.processRestartCount),
    fullJobRestartsLeft: left(rp.restartPolicy?.maxFullJobRestarts, job.restartStatus.fullJobRestartCount),
    restartsBeforeFullJobRestartLeft: left(
      rp.restartPolicy?.numRestartBeforeFullJobRestart,
      job.restartStatus.restartCount,
    ),
  };
}

/** Renders a job record as the API's job document. */
export function jobDocument(job: JobRecord) {
  return {
    apiVersion: job.spec.apiVersion,
    kind: job.spec.kind,
    metadata: {
      name: job.name,
      namespace: job.namespace,
      uid: job.uid,
      creationTimestamp: iso(job.createdAt),
      labels: job.spec.labels,
      annotations: job.spec.annotations,
      submittedBy: job.submittedBy,
    },
    // The normalized spec as a manifest's `spec` (defaults applied), like `kubectl get -o yaml` shows it.
    spec: toManifest(job.spec).spec,
    status: {
      phase: job.phase,
      generation: job.generation,
      conditions: job.conditions.map((c) => ({ ...c, lastTransitionTime: iso(c.lastTransitionTime) })),
      startTime: iso(job.startTime),
      completionTime: iso(job.completionTime),
      restartCount: job.restartCount,
      restartStatus: {
        currentEvalPeriod: iso(job.restartStatus.currentEvalPeriod),
        restartCount: job.restartStatus.restartCount,
        fullJobRestartCount: job.restartStatus.fullJobRestartCount,
      },
      processRestartCount: job.processRestartCount,
      latestFaultyPodInstanceList: job.latestFaultyPodInstanceList,
      masterAddr: job.masterAddr,
      masterPort: job.masterPort,
      runningSince: iso(job.runningSince),
      pods: job.pods.map((p) => ({
        name: p.name,
        replica: p.replica,
        index: p.index,
        rank: p.groupRank,
        spare: p.spare,
        phase: p.podPhase,
        node: p.nodeName,
        ip: p.ip,
        agentState: p.agent?.state,
        agentGeneration: p.agent?.generation,
        agentReason: p.agent?.reason,
        lastSeen: iso(p.lastSeenAt),
      })),
      remediations: job.remediations.map((r) => ({
        generation: r.generation,
        reason: r.reason,
        level: r.level,
        faultTime: iso(r.faultAt),
        detectionTime: iso(r.detectedAt),
        recoveryTime: iso(r.recoveredAt),
        detectionLatencyMs: r.detectedAt - r.faultAt,
        restartLatencyMs: r.recoveredAt === undefined ? null : r.recoveredAt - r.detectedAt,
        pods: r.pods,
        ranks: r.ranks,
        nodes: r.nodes,
        // Full list lengths when a compacted record keeps only the first entries (core/decide/compact.ts).
        counts: r.counts,
        message: r.message,
      })),
      budgets: budgetsOf(job),
      progress: {
        step: job.progress.step,
        time: iso(job.progress.at),
        restartsWithoutProgress: job.progress.restartsWithoutProgress,
      },
      nodeFaults: job.nodeFaults,
      /** Pods holding a rank (the node count the agents get as `nnodes`). */
      worldSize: job.pods.filter((p) => p.groupRank !== null).length,
      elasticScalingStatus: job.elastic ? elasticDocument(job.elastic) : undefined,
      updateTime: iso(job.updatedAt),
    },
  };
}

/**
 * An elastic job's scaling state (HyperPod's `status.elasticScalingStatus`, with TrainKeeper's fields):
 * current and target world size, the allowed sizes, the capacity seen, the scaling in flight and the
 * last scalings with their reason and duration.
 */
export function elasticDocument(e: NonNullable<JobRecord['elastic']>) {
  return {
    currentReplicas: e.currentReplicas,
    targetReplicas: e.desiredReplicas,
    allowedSizes: e.allowedSizes,
    capacity: e.capacity,
    stage: e.scaling?.stage,
    scalingCount: e.scalingCount,
    lastScalingTime: iso(e.events.at(-1)?.endedAt ?? e.scaling?.startedAt),
    secondsBelowMax: (e.belowMaxMs ?? 0) / 1000,
    belowMaxSince: iso(e.belowMaxSince),
    events: e.events.map((s) => ({
      direction: s.direction,
      from: s.from,
      to: s.to,
      reason: s.reason,
      outcome: s.outcome,
      startTime: iso(s.startedAt),
      endTime: iso(s.endedAt),
      durationMs: s.endedAt - s.startedAt,
    })),
  };
}

/** The job document's type (see functions/README.md). */
export type JobDocument = ReturnType<typeof jobDocument>;

/** One timeline event as the API returns it (functions/README.md "Event"). */
export type EventDocument = ReturnType<typeof eventDocument>;

/** Renders one timeline event: `at` stays epoch ms (the `after` cursor), `time` is RFC 3339. */
export function eventDocument(e: JobEvent) {
  return {
    at: e.at,
    time: iso(e.at),
    type: e.type,
    reason: e.reason,
    message: e.message,
    generation: e.generation,
    lifecycle: e.lifecycle,
    details: e.details,
  };
}
