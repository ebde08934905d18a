/**
 * The in-process restart tier (issue 19; HyperPod's `in_process_restart`): the cheapest rung of the ladder,
 * below the process-level restart. The workers that survived a fault stay alive; every rank agent gets
 * `POST /inprocess-restart` with the new generation's rendezvous (`RestartInProcess`), replaces only its
 * dead workers and tells the live ones to re-enter the training function; the job is recovered once every
 * rank agent reports RUNNING at the new generation, as after any restart.
 *
 *   RUNNING(g−1) ─ worker dies ─► FAULTED(g−1, WorkerCrash) ─► decide: generation g, Restarting,
 *     RestartInProcess(every rank, g) ─► agents respawn the dead, live workers re-enter ─► RUNNING(g) ─► Running
 *                                    └─ workers not back within --inprocess-timeout ─► FAULTED(g,
 *                                       InProcessRestartTimeout) ─► decide: process-level restart at g+1
 *
 * When the ladder picks it (`canRestartInProcess`): the job opted in (`spec.trainkeeper.inProcessRestart`),
 * the restart is automatic, every fault of the batch is a process-level one (a worker crash, an agent
 * fault, a log-rule hit) and none is an in-process timeout, no in-process restart of this generation is
 * under way (a fault during one means it failed: the next restart is process level), no elastic scaling is
 * in flight, and every rank pod is Running, reachable, with its agent RUNNING or FAULTED at the current
 * generation (a run the agent can restart in place). Anything else takes the usual rungs.
 *
 * Budgets: an in-process restart counts exactly as a process-level restart (`processRestartCount` against
 * `jobMaxRetryCount`, the sliding window of `numRestartBeforeFullJobRestart`, backoff, `restartCount`),
 * so opting in never lets a crash loop run longer than it would at process level.
 *
 * Pure: no I/O, no clock.
 */
import { INPROCESS_REASONS } from '../agent-protocol.ts';
import type { JobRecord, PodSlot, Remediation } from '../job.ts';
import type { Fault } from './fault.ts';
import { rankSlots } from './record.ts';

/**
 * After this long without every rank RUNNING at the new generation, `RestartInProcess` is sent again to the
 * ranks still on the old run (a request lost with a Lambda that died between its write and its act, or an
 * unreachable agent, whose failed answers then count towards `AgentUnreachable`). The agent answers a
 * replay of a generation it already took with its status, so a re-send while workers re-enter is harmless.
 */
export const INPROCESS_RESEND_MS = 15_000;

/** The job's open in-process restart (the remediation of its current generation), if it is restarting in place. */
export const openInProcessRestart = (job: JobRecord): Remediation | undefined => {
  if (job.phase !== 'Restarting') return undefined;
  const open = job.remediations.find((r) => r.generation === job.generation && r.recoveredAt === undefined);
  return open?.level === 'inprocess' ? open : undefined;
};

/** A rank whose pod runs, whose agent answers and runs the current generation (its workers may have died). */
const hasLiveRun = (job: JobRecord, slot: PodSlot): boolean =>
  slot.podPhase === 'Running' &&
  slot.ip !== undefined &&
  slot.unreachable === undefined &&
  (slot.agent?.state === 'RUNNING' || slot.agent?.state === 'FAULTED') &&
  slot.agent.generation === job.generation;

/** Whether this batch of rank faults is restarted in place (see the module comment for each condition). */
export const canRestartInProcess = (job: JobRecord, faults: readonly Fault[], manual: boolean): boolean => {
  if (job.spec.trainkeeper.inProcessRestart !== true || manual) return false;
  if (job.elastic?.scaling !== undefined || openInProcessRestart(job) !== undefined) return false;
  if (!faults.every((f) => f.level === 'process' && f.reason !== INPROCESS_REASONS.timeout)) return false;
  const ranks = rankSlots(job);
  return ranks.length > 0 && ranks.every((s) => hasLiveRun(job, s));
};

/**
 * The ranks to send `RestartInProcess` to now: every rank when it was not sent yet (`sent` false), else,
 * once `INPROCESS_RESEND_MS` passed since the restart was decided, the ranks whose agent still reports a
 * run of an older generation.
 */
export const inProcessTargets = (
  job: JobRecord,
  open: Remediation,
  sent: boolean,
  now: number,
): PodSlot[] => {
  const ranks = rankSlots(job).filter((s) => s.podPhase === 'Running' && s.ip !== undefined);
  if (!sent) return ranks.length === rankSlots(job).length ? ranks : [];
  if (now - open.detectedAt < INPROCESS_RESEND_MS) return [];
  return ranks.filter(
    (s) =>
      (s.agent?.state === 'RUNNING' || s.agent?.state === 'FAULTED') && s.agent.generation < job.generation,
  );
};
