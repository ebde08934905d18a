/**
 * `decide`: the job lifecycle and the restart ladder as one pure function (DESIGN.md "Restart ladder").
 *
 * A trigger loads the job, calls `decide(job, observations, now)`, writes the returned job once
 * (conditional on `version`), then executes the actions in order. Agent calls answer with statuses that
 * the shell feeds back as `AgentPolled` observations in another `decide` call (bounded loop), so one
 * process-level restart reads:
 *
 *   decide ─► StopAgents(all, g+1) ─► READY ─► decide ─► StartAgents(all, g+1) ─► RUNNING ─► decide ─► Running
 *
 * Deterministic: no I/O, no clock, no randomness; the same inputs give the same outputs.
 * Parts: fold (observations → record + fault candidates), ladder (faults → rung by ordered rules, budgets),
 * terminal (fail, succeed, cancel, suspend, resume), lifecycle (level-triggered transitions and actions,
 * nextCheckAt).
 *
 * Invariants: the input record is never written to, and the returned one may share unchanged parts (pod
 * slots) with it, so treat both as immutable; an unchanged record comes back as the same object with
 * `changed` false and the same `version`; any change bumps `version` by exactly one and stamps `updatedAt = now`; a changed record's
 * JSON fits `MAX_RECORD_BYTES` (decide/compact.ts) unless its spec, slots and conditions alone do not. Every observation
 * type and every command is handled (the switches in `foldObservation` and `applyCommand` fail to
 * compile when one is added).
 */
import type { Action } from './actions.ts';
import { compactRecord } from './decide/compact.ts';
import { draftOf, releaseDraft } from './decide/draft.ts';
import { deriveElastic, faultsToAct, newElasticStatus, settleElastic } from './decide/elastic.ts';
import { newFault, withoutCollateral } from './decide/fault.ts';
import { type FoldContext, foldObservation } from './decide/fold.ts';
import { remediate } from './decide/ladder.ts';
import { computeNextCheckAt, deriveActions } from './decide/lifecycle.ts';
import { guardLogPath } from './decide/log-path.ts';
import { counterAction, eventAction, setCondition } from './decide/record.ts';
import { freshSlots } from './decide/slots.ts';
import { cancelJob, resumeJob, suspendJob } from './decide/terminal.ts';
import { type JobRecord, sameJson } from './job.ts';
import { Metric } from './metrics.ts';
import type { Observation } from './observations.ts';
import { LifecycleEvent, Reason } from './reasons.ts';
import type { JobSpec } from './spec/types.ts';

/**
 * A new job's first record and the actions that bring it up: version 1; phase Pending (Suspended when
 * `runPolicy.suspend`); a slot for every replica index including spares; EnsureService, CreatePods
 * (generation 0; not while suspended), the `JobSubmitted` event and the jobsCreated counter.
 */
export const newJobRecord = (
  spec: JobSpec,
  meta: { uid: string; submittedBy: string; now: number },
): { job: JobRecord; actions: Action[] } => {
  const { now } = meta;
  const suspended = spec.runPolicy.suspend;
  const elastic = newElasticStatus(spec);
  const job: JobRecord = {
    namespace: spec.namespace,
    name: spec.name,
    uid: meta.uid,
    spec,
    submittedBy: meta.submittedBy,
    phase: suspended ? 'Suspended' : 'Pending',
    conditions: [],
    generation: 0,
    pods: freshSlots(spec, 0, [], elastic?.currentReplicas),
    restartStatus: { currentEvalPeriod: now, restartCount: 0, fullJobRestartCount: 0 },
    restartCount: 0,
    processRestartCount: 0,
    nodeFaults: {},
    progress: { restartsWithoutProgress: 0 },
    remediations: [],
    ruleState: undefined,
    ...(elastic ? { elastic } : {}),
    createdAt: now,
    updatedAt: now,
    version: 1,
    phaseSince: now,
  };
  setCondition(job, 'Created', 'True', Reason.Created, `Created by TrainKeeper for ${meta.submittedBy}`, now);
  if (suspended) {
    setCondition(
      job,
      'Suspended',
      'True',
      Reason.Suspended,
      'Job suspended at creation; resumes when admitted',
      now,
    );
  }
  const actions: Action[] = [{ type: 'EnsureService' }];
  if (!suspended) {
    actions.push({
      type: 'CreatePods',
      pods: job.pods.map((s) => ({
        name: s.name,
        replica: s.replica,
        index: s.index,
        generation: 0,
        spare: s.groupRank === null,
        avoidNodes: [],
      })),
    });
  }
  actions.push(
    eventAction(
      job,
      now,
      Reason.Created,
      `Job ${spec.namespace}/${spec.name} submitted by ${meta.submittedBy}`,
      {
        lifecycle: LifecycleEvent.JobSubmitted,
      },
    ),
    counterAction(Metric.jobsCreated),
  );
  const next = computeNextCheckAt(job);
  if (next !== undefined) job.nextCheckAt = next;
  return { job, actions };
};

const applyCommand = (
  job: JobRecord,
  obs: Extract<Observation, { type: 'Command' }>,
  now: number,
  ctx: FoldContext,
  actions: Action[],
): void => {
  const c = obs.command;
  switch (c.kind) {
    case 'Cancel': {
      cancelJob(job, c.by, now, actions);
      return;
    }
    case 'Suspend': {
      suspendJob(job, c.by, now, actions);
      return;
    }
    case 'Resume': {
      resumeJob(job, c.by, now, actions);
      return;
    }
    case 'UpdateRules':
      job.spec = { ...job.spec, runPolicy: { ...job.spec.runPolicy, logMonitoringConfiguration: c.rules } };
      job.ruleState = undefined;
      actions.push(
        eventAction(
          job,
          now,
          'RulesUpdated',
          `Log monitoring rules replaced by ${c.by} (${c.rules.length} rules)`,
        ),
      );
      return;
    case 'Restart':
      ctx.faults.push(
        newFault({
          reason: Reason.ManualRestart,
          level: c.level,
          manual: true,
          faultAt: obs.at,
          message: `Restart at ${c.level} level requested by ${c.by}`,
        }),
      );
      return;
    default: {
      // Exhaustive: a new command kind fails to compile here until it is applied.
      const unhandled: never = c;
      throw new Error(`applyCommand: unknown command ${JSON.stringify(unhandled)}`);
    }
  }
};

/**
 * Folds `observations` into `job`, then derives the actions from the resulting state (level-triggered).
 * When anything changed: `version + 1`, `updatedAt = now`, `changed` true. Otherwise the job is returned
 * as given with `changed` false (actions may still be non-empty, e.g. PollAgents or a due DeleteJob).
 * Stale inputs (older generation, a pod no longer in a slot, a replayed command or finding) are no-ops.
 */
export const decide = (
  job: JobRecord,
  observations: Observation[],
  now: number,
): { job: JobRecord; actions: Action[]; changed: boolean } => {
  // Copy on write (decide/draft.ts): unchanged slots stay the input's objects, so the cost follows the
  // slots that change, and the comparison below skips the rest at once.
  const draft = draftOf(job);
  const ctx: FoldContext = {
    faults: [],
    commands: [],
    strays: [],
    findings: [],
    confirm: [],
    heldHangs: [],
    faulted: [],
  };
  for (const obs of observations) foldObservation(draft, obs, ctx);
  const actions: Action[] = [];
  // Claims read from the log path move the job only once the agent confirms them (decide/fold.ts).
  const confirm = [...new Set(ctx.confirm)];
  if (confirm.length > 0) actions.push({ type: 'PollAgents', pods: confirm });
  guardLogPath(draft, ctx.heldHangs ?? [], now, actions);
  for (const f of ctx.findings) {
    actions.push(counterAction(Metric.ruleFindings, { rule: f.rule, verdict: f.verdict }));
  }
  for (const command of ctx.commands) applyCommand(draft, command, now, ctx, actions);
  remediate(draft, faultsToAct(draft, withoutCollateral(ctx.faults, ctx.faulted ?? [])), now, actions);
  deriveElastic(draft, now, actions);
  deriveActions(draft, now, ctx.strays, actions);
  settleElastic(draft, now, actions);
  const next = computeNextCheckAt(draft);
  if (next === undefined) delete draft.nextCheckAt;
  else draft.nextCheckAt = next;
  releaseDraft(draft);
  if (sameJson(job, draft)) return { job, actions, changed: false };
  draft.version = job.version + 1;
  draft.updatedAt = now;
  // Every record decide writes fits the store's guard: history is trimmed, in a documented order, when
  // the record would outgrow it (a cancel of a big job with many restarts must still be written).
  return { job: compactRecord(draft), actions, changed: true };
};
