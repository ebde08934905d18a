/**
 * Zod schemas for what the store reads back from DynamoDB. Items are parsed, never cast: a corrupt item
 * becomes a `PermanentError` naming the item and the field path, not a half-valid object in `decide`.
 *
 * The job record's top-level fields are checked exactly (they drive the state machine and the indexes);
 * `spec` and `ruleState` are owned by the spec parser and the rule engine and are checked only for shape
 * (an object / any JSON value), so this file does not duplicate their schemas.
 */
import { z } from 'zod';
import { AGENT_STATES } from '../../core/agent-protocol.ts';
import { JOB_PHASES, type JobRecord, RESTART_LEVELS } from '../../core/job.ts';
import type { JobSpec } from '../../core/spec/types.ts';

const phase = z.enum(JOB_PHASES);
const int = z.number().int();

const condition = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: z.number(),
});

const podSlot = z.looseObject({
  replica: z.string(),
  index: int,
  name: z.string(),
  podGeneration: int,
  groupRank: int.nullable(),
  spare: z.boolean(),
  podPhase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed', 'Unknown', 'Deleting']),
  nodeName: z.string().optional(),
  ip: z.string().optional(),
  agent: z
    .looseObject({
      state: z.enum(AGENT_STATES),
      generation: int,
      at: z.number(),
      reason: z.string().optional(),
    })
    .optional(),
  lastSeenAt: z.number().optional(),
});

const remediation = z.looseObject({
  generation: int,
  reason: z.string(),
  level: z.enum(RESTART_LEVELS),
  faultAt: z.number(),
  detectedAt: z.number(),
  recoveredAt: z.number().optional(),
  pods: z.array(z.string()),
  ranks: z.array(z.number()),
  nodes: z.array(z.string()),
  message: z.string().optional(),
});

/** The job record as stored (JSON in the item's `record` attribute). */
export const jobRecordSchema = z.looseObject({
  namespace: z.string().min(1),
  name: z.string().min(1),
  uid: z.string(),
  spec: z.looseObject({}),
  submittedBy: z.string(),
  phase,
  conditions: z.array(condition),
  generation: int.nonnegative(),
  pods: z.array(podSlot),
  restartStatus: z.looseObject({
    currentEvalPeriod: z.number(),
    restartCount: int,
    fullJobRestartCount: int,
  }),
  restartCount: int,
  processRestartCount: int,
  latestFaultyPodInstanceList: z
    .looseObject({
      restartType: z.enum(['PLR', 'JLR']),
      faultyInstanceIdList: z.array(z.string()),
      faultyPodList: z.array(z.string()),
      faultyRankList: z.array(z.number()),
    })
    .optional(),
  masterAddr: z.string().optional(),
  masterPort: int.optional(),
  nodeFaults: z.record(z.string(), z.number()),
  progress: z.looseObject({
    step: z.number().optional(),
    at: z.number().optional(),
    restartsWithoutProgress: int,
  }),
  remediations: z.array(remediation),
  ruleState: z.unknown().optional(),
  runningSince: z.number().optional(),
  workerLinesAt: z.number().optional(),
  backoffUntil: z.number().optional(),
  createdAt: z.number(),
  startTime: z.number().optional(),
  completionTime: z.number().optional(),
  updatedAt: z.number(),
  nextCheckAt: z.number().optional(),
  /** Ids of the last applied commands (core/job.ts `APPLIED_COMMANDS_KEPT`): replays are recognised by them. */
  appliedCommands: z.array(z.string()).optional(),
  version: int.nonnegative(),
});

/** One timeline event as stored. */
export const jobEventSchema = z.object({
  at: z.number(),
  type: z.enum(['Normal', 'Warning']),
  reason: z.string(),
  message: z.string(),
  generation: int,
  lifecycle: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

/** A counter or gauge item. */
export const seriesItemSchema = z.object({
  name: z.string().min(1),
  labels: z.record(z.string(), z.string()),
  value: z.number(),
});

/** An idempotency-key item. */
export const idempotencyItemSchema = z.object({
  ref: z.object({ namespace: z.string(), name: z.string() }),
  bodyHash: z.string(),
  uid: z.string().optional(),
  expiresAt: z.number(),
});

/** Formats zod issues as `path: message; …` so an operator can find the bad field. */
export const formatIssues = (error: z.ZodError): string =>
  error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');

/**
 * Narrows a parsed record to `JobRecord`. `spec` was checked to be an object only (its schema belongs to
 * core/spec), which is the one place the store trusts the writer: only `decide` output is ever stored.
 */
export const toJobRecord = (parsed: z.infer<typeof jobRecordSchema>): JobRecord =>
  ({ ...parsed, spec: parsed.spec as unknown as JobSpec }) as JobRecord;
