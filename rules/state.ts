/**
 * The rule engine's stored state: plain JSON, kept with the job in DynamoDB (`JobRecord.ruleState`) and
 * parsed with `RuleStateSchema` whenever it is read back (parse, don't cast).
 *
 * Invariants: bounded by rules × streams — one slot per rule, one entry per stream that the rule has to
 * remember something about (a per-stream timer of a stream-scope rule; for a job-scope rule only a SLOW
 * streak under way or a SLOW/FAULTED verdict: a healthy stream has no entry, engine.ts
 * `forgetStreamsAtRest`), and no line history beyond the last matched line per rule/stream, truncated to
 * `MAX_TEXT` characters. Times are epoch ms.
 */
import { z } from 'zod';

/** Longest stored line text (characters). */
export const MAX_TEXT = 512;

/** Version tag of the stored shape; a different tag parses as "no state" and starts fresh. */
export const RULE_STATE_VERSION = 1;

const verdict = z.enum(['WAITING', 'HEALTHY', 'SLOW', 'HANGING', 'FAULTED']);

/**
 * Timers of one scope (job-wide for `scope: 'job'`, or one stream for `scope: 'stream'`): the last
 * `logPattern` match and whether the scope is HANGING.
 */
const TimerSchema = z.object({
  /** WAITING (no match yet), HEALTHY, HANGING — for a stream entry also SLOW or FAULTED. */
  verdict,
  lastMatchAt: z.number().optional(),
  lastText: z.string().max(MAX_TEXT).optional(),
});

/** What a rule remembers about one stream. */
const StreamSchema = TimerSchema.extend({
  rank: z.number().int().optional(),
  /** Consecutive SLOW data points, capped at `metricEvaluationDataPoints`. */
  slow: z.number().int().min(0),
  /** The stop pattern was seen on this stream (scope `stream`). */
  stopped: z.boolean().optional(),
});

const RuleSlotSchema = z.object({
  /** The stop pattern was seen (scope `job`: on any stream; the rule is off for the generation). */
  stopped: z.boolean().optional(),
  /** Job-wide timers (scope `job`). */
  job: TimerSchema,
  streams: z.record(z.string(), StreamSchema),
});

/** Zod schema of the stored state; `RuleStateSchema.safeParse(job.ruleState)` before use. */
export const RuleStateSchema = z.object({
  v: z.literal(RULE_STATE_VERSION),
  /** The restart generation these timers belong to. */
  generation: z.number().int(),
  /** When the generation's rule timers started (start cutoffs count from here). */
  startedAt: z.number(),
  /** Latest time the engine has seen (never moves backwards). */
  clock: z.number(),
  /** Keyed by rule name. */
  rules: z.record(z.string(), RuleSlotSchema),
});

/** The engine's state (see `RuleStateSchema`). */
export type RuleState = z.infer<typeof RuleStateSchema>;
/** One rule's part of `RuleState`. */
export type RuleSlot = z.infer<typeof RuleSlotSchema>;
/** One rule × stream entry of `RuleState`. */
export type StreamSlot = z.infer<typeof StreamSchema>;
/** Job-wide timers of a rule. */
export type TimerSlot = z.infer<typeof TimerSchema>;
