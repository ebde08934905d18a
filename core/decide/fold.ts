/**
 * Folding: observations in, a changed draft record and a list of fault candidates out. Nothing here
 * decides how to recover; the ladder does that once the whole batch is folded, so one batch that carries
 * several symptoms of one fault (a crash on every rank, a failed pod on a bad node) becomes one restart.
 *
 * Staleness rules (each makes a duplicate or late delivery a no-op):
 * - agent RUNNING/COMPLETED/FAULTED records and polls for an older generation are ignored; READY, INIT and
 *   STOPPING are about the agent being idle and apply whatever generation they carry;
 * - an agent record or poll older than the slot's last one is ignored;
 * - news about a pod that no longer holds a slot (replaced, stray) is ignored;
 * - rule findings count only for the current generation;
 * - a command at or before the last applied command's time is a replay.
 */
import type { AgentState, StatusBody } from '../agent-protocol.ts';
import { AGENT_STATES } from '../agent-protocol.ts';
import type { JobRecord, PodSlot } from '../job.ts';
import { isTerminal } from '../job.ts';
import type { Observation, ObservedNode } from '../observations.ts';
import { Reason } from '../reasons.ts';
import { slotForPod } from './naming.ts';
import { isPodSeen } from './slots.ts';

/** One symptom that calls for a restart (or a pod replacement). */
export interface Fault {
  reason: string;
  /** The cheapest level that can fix it (the ladder may escalate). */
  level: 'process' | 'pod' | 'job';
  /** Asked for by a user (Restart command): not counted against budgets, windows or backoff. */
  manual: boolean;
  /** The pod (slot name at detection) it concerns, if any. */
  pod?: string;
  node?: string;
  instanceId?: string;
  rank?: number;
  /** Best knowledge of when it happened. */
  faultAt: number;
  message: string;
  /** Delete the faulty pod with grace 0 (its node is gone or unhealthy). */
  force?: boolean;
}

/** What a fold pass collects besides the record changes. */
export interface FoldContext {
  faults: Fault[];
  /** Commands to apply after folding (in order). */
  commands: Extract<Observation, { type: 'Command' }>[];
  /** Pods listed by the cluster that hold no slot and are not being deleted: delete them. */
  strays: string[];
  /** Rule findings of the current generation, counted in `trainkeeper_rule_findings_total`. */
  findings: { rule: string; verdict: string }[];
}

/** A node is unhealthy when its HyperPod health label says anything but `Schedulable`, or it is NotReady. */
export const isNodeUnhealthy = (node: Pick<ObservedNode, 'health' | 'ready'>): boolean =>
  (node.health !== undefined && node.health !== 'Schedulable') || node.ready === false;

const IDLE_STATES: readonly AgentState[] = ['READY', 'INIT', 'STOPPING', 'SHUTDOWN'];

/** Agent states that belong to one generation's run (older ones are stale). */
const isGenerationBound = (state: AgentState): boolean => !IDLE_STATES.includes(state);

const toAgentState = (status: StatusBody['status']): AgentState | undefined => {
  const upper = status.toUpperCase();
  return (AGENT_STATES as readonly string[]).includes(upper) ? (upper as AgentState) : undefined;
};

/** Whether the current generation's agents were started (faults before that are someone else's). */
const isStarted = (job: JobRecord): boolean => job.startedGeneration === job.generation;

const extractProgressStep = (progress: Record<string, unknown> | undefined): number | undefined => {
  if (!progress) return undefined;
  let best: number | undefined;
  for (const value of Object.values(progress)) {
    if (value && typeof value === 'object' && 'progressCount' in value) {
      const count = Number((value as { progressCount: unknown }).progressCount);
      if (Number.isFinite(count) && (best === undefined || count > best)) best = count;
    }
  }
  return best;
};

/** Records training progress; true when the step advanced (which resets the no-progress count). */
export const applyProgress = (job: JobRecord, step: number, at: number): boolean => {
  if (job.progress.step !== undefined && step <= job.progress.step) return false;
  job.progress = { step, at, restartsWithoutProgress: 0 };
  return true;
};

const faultFromAgent = (
  slot: PodSlot,
  reason: string | undefined,
  message: string | undefined,
  at: number,
): Fault => {
  const fault: Fault = {
    reason: reason || Reason.WorkerFault,
    level: 'process',
    manual: false,
    pod: slot.name,
    faultAt: at,
    message: message || `Agent of pod ${slot.name} reported ${reason || Reason.WorkerFault}`,
  };
  if (slot.nodeName) fault.node = slot.nodeName;
  if (slot.groupRank !== null) fault.rank = slot.groupRank;
  return fault;
};

/**
 * Applies one agent state report (record or poll). Returns false when it was stale and ignored.
 */
const applyAgentState = (
  job: JobRecord,
  slot: PodSlot,
  report: { state: AgentState; generation: number; at: number; reason?: string; message?: string },
  ctx: FoldContext,
): boolean => {
  if (slot.agent && report.at < slot.agent.at) return false;
  if (isGenerationBound(report.state) && report.generation !== job.generation) return false;
  slot.agent = { state: report.state, generation: report.generation, at: report.at };
  if (report.reason) slot.agent.reason = report.reason;
  if (slot.lastSeenAt === undefined || report.at > slot.lastSeenAt) slot.lastSeenAt = report.at;
  if (slot.unreachable) delete slot.unreachable;
  if (report.state === 'FAULTED' && slot.groupRank !== null && isStarted(job)) {
    ctx.faults.push(faultFromAgent(slot, report.reason, report.message, report.at));
  } else if (
    (report.state === 'READY' || report.state === 'INIT') &&
    job.phase === 'Running' &&
    slot.groupRank !== null &&
    isStarted(job) &&
    job.runningSince !== undefined &&
    report.at > job.runningSince
  ) {
    // An idle agent in a running generation lost its workers (its container restarted): restart all.
    ctx.faults.push(
      faultFromAgent(
        slot,
        Reason.WorkerFault,
        `Agent of pod ${slot.name} reported ${report.state} while the job was running (container restarted?)`,
        report.at,
      ),
    );
  }
  return true;
};

const foldPods = (job: JobRecord, obs: Extract<Observation, { type: 'PodsObserved' }>, ctx: FoldContext) => {
  const listed = new Map(obs.pods.map((p) => [p.name, p]));
  const nodes = new Map(obs.nodes.map((n) => [n.name, n]));
  for (const slot of job.pods) {
    const pod = listed.get(slot.name);
    if (slot.podPhase === 'Deleting') continue;
    if (!pod) {
      // A list taken before the pod was first seen (or before its agent last spoke) is old news.
      const newer =
        obs.at > (slot.podObservedAt ?? Number.NEGATIVE_INFINITY) &&
        obs.at > (slot.lastSeenAt ?? Number.NEGATIVE_INFINITY);
      if (isPodSeen(slot) && newer) {
        const fault: Fault = {
          reason: Reason.PodMissing,
          level: 'pod',
          manual: false,
          pod: slot.name,
          faultAt: obs.at,
          message: `Pod ${slot.name} disappeared`,
        };
        if (slot.nodeName) fault.node = slot.nodeName;
        if (slot.groupRank !== null) fault.rank = slot.groupRank;
        ctx.faults.push(fault);
      }
      continue;
    }
    slot.podObservedAt ??= obs.at;
    if (pod.phase !== slot.podPhase) slot.podPhase = pod.phase;
    if (pod.nodeName && pod.nodeName !== slot.nodeName) slot.nodeName = pod.nodeName;
    if (pod.podIP && pod.podIP !== slot.ip) slot.ip = pod.podIP;
    const base = {
      level: 'pod' as const,
      manual: false,
      pod: slot.name,
      faultAt: pod.deletionTimestamp ?? obs.at,
      ...(slot.nodeName ? { node: slot.nodeName } : {}),
      ...(slot.groupRank !== null ? { rank: slot.groupRank } : {}),
    };
    if (pod.deletionTimestamp !== undefined) {
      ctx.faults.push({ ...base, reason: Reason.PodMissing, message: `Pod ${slot.name} was deleted` });
    } else if (pod.phase === 'Failed' || pod.phase === 'Succeeded' || pod.phase === 'Unknown') {
      const exit = pod.containers.find((c) => c.state === 'terminated');
      const detail = exit
        ? ` (container ${exit.name} exit code ${exit.exitCode ?? '?'}${exit.reason ? `, ${exit.reason}` : ''})`
        : '';
      ctx.faults.push({
        ...base,
        reason: Reason.PodFailed,
        message: `Pod ${slot.name} is ${pod.phase}${detail}`,
        force: pod.phase === 'Unknown',
      });
    }
  }
  for (const node of nodes.values()) foldNodeHealth(job, node.name, node, obs.at, ctx);
  for (const pod of obs.pods) {
    if (pod.deletionTimestamp === undefined && !slotForPod(job, pod.name)) ctx.strays.push(pod.name);
  }
};

const foldNodeHealth = (
  job: JobRecord,
  nodeName: string,
  node: Pick<ObservedNode, 'health' | 'ready' | 'instanceId'>,
  at: number,
  ctx: FoldContext,
) => {
  if (!isNodeUnhealthy(node)) return;
  for (const slot of job.pods) {
    if (slot.nodeName !== nodeName || slot.podPhase === 'Deleting') continue;
    const fault: Fault = {
      reason: Reason.NodeFault,
      level: 'pod',
      manual: false,
      pod: slot.name,
      node: nodeName,
      faultAt: at,
      message: `Found unhealthy node ${nodeName}`,
      force: true,
    };
    if (node.instanceId) fault.instanceId = node.instanceId;
    if (slot.groupRank !== null) fault.rank = slot.groupRank;
    ctx.faults.push(fault);
  }
};

/**
 * Folds one observation into the draft. Terminal jobs take nothing; suspended jobs take only commands.
 */
export const foldObservation = (job: JobRecord, obs: Observation, ctx: FoldContext): void => {
  if (isTerminal(job.phase)) return;
  if (obs.type === 'Command') {
    if (job.lastCommandAt !== undefined && obs.at <= job.lastCommandAt) return;
    job.lastCommandAt = obs.at;
    ctx.commands.push(obs);
    return;
  }
  if (job.phase === 'Suspended') return;
  switch (obs.type) {
    case 'RuleFindings': {
      if (obs.ruleState !== undefined) job.ruleState = obs.ruleState;
      if (!isStarted(job)) return;
      for (const finding of obs.findings) {
        if (finding.generation !== job.generation) continue;
        ctx.findings.push({ rule: finding.rule, verdict: finding.verdict });
        const podOfStream = finding.stream.includes('/')
          ? finding.stream.slice(0, finding.stream.lastIndexOf('/'))
          : finding.stream;
        const slot = slotForPod(job, podOfStream);
        const fault: Fault = {
          reason: finding.reason,
          level: 'process',
          manual: false,
          faultAt: finding.at,
          message: `Rule ${finding.rule} reported ${finding.verdict}${finding.text !== undefined ? `: ${finding.text}` : ''}`,
        };
        if (slot) {
          fault.pod = slot.name;
          if (slot.nodeName) fault.node = slot.nodeName;
        }
        if (finding.rank !== undefined) fault.rank = finding.rank;
        ctx.faults.push(fault);
      }
      return;
    }
    case 'RuleStateAdvanced':
      job.ruleState = obs.ruleState;
      return;
    case 'AgentRecord': {
      const slot = slotForPod(job, obs.pod);
      if (!slot || slot.podPhase === 'Deleting') return;
      const record = obs.record;
      const at = obs.at;
      if (record.kind === 'state') {
        const report: Parameters<typeof applyAgentState>[2] = {
          state: record.state,
          generation: record.generation,
          at,
        };
        if (record.reason) report.reason = record.reason;
        if (record.message) report.message = record.message;
        applyAgentState(job, slot, report, ctx);
        return;
      }
      if (record.generation !== job.generation && isGenerationBound(record.state)) return;
      if (slot.agent && at < slot.agent.at) return;
      if (slot.lastSeenAt === undefined || at > slot.lastSeenAt) slot.lastSeenAt = at;
      if (record.kind === 'heartbeat') {
        if (!slot.agent || slot.agent.state !== record.state || slot.agent.generation !== record.generation) {
          slot.agent = { state: record.state, generation: record.generation, at };
        }
        const step = extractProgressStep(record.progress);
        if (step !== undefined) applyProgress(job, step, at);
        return;
      }
      // worker-exit: a non-zero exit or a signal of the current generation is a crash.
      const crashed = record.exitCode !== 0 || record.signal !== null;
      if (crashed && record.generation === job.generation && slot.groupRank !== null && isStarted(job)) {
        const how = record.signal ? `signal ${record.signal}` : `exit code ${record.exitCode}`;
        ctx.faults.push(
          faultFromAgent(
            slot,
            Reason.WorkerCrash,
            `Worker local rank ${record.localRank} of pod ${slot.name} exited with ${how}`,
            at,
          ),
        );
      }
      return;
    }
    case 'AgentPolled': {
      const slot = slotForPod(job, obs.pod);
      if (!slot || slot.podPhase === 'Deleting') return;
      if (obs.status === null) {
        if (slot.unreachable && obs.at <= slot.unreachable.lastAt) return;
        if (slot.agent && obs.at < slot.agent.at) return;
        const count = (slot.unreachable?.count ?? 0) + 1;
        slot.unreachable = { count, lastAt: obs.at };
        // An agent that never answered is still starting (the startup deadline covers it).
        if (count >= 2 && slot.agent !== undefined) {
          const fault: Fault = {
            reason: Reason.AgentUnreachable,
            level: 'pod',
            manual: false,
            pod: slot.name,
            faultAt: slot.unreachable.lastAt,
            message: `Agent of pod ${slot.name} unreachable on ${count} consecutive polls`,
          };
          if (slot.nodeName) fault.node = slot.nodeName;
          if (slot.groupRank !== null) fault.rank = slot.groupRank;
          ctx.faults.push(fault);
        }
        return;
      }
      const state = toAgentState(obs.status.status);
      if (!state) return;
      // Without the faultCount extension, a run-bound state is taken as the generation last started.
      const generation =
        obs.status.faultCount ??
        (isGenerationBound(state) ? (job.startedGeneration ?? -1) : (slot.agent?.generation ?? -1));
      const report: Parameters<typeof applyAgentState>[2] = { state, generation, at: obs.at };
      if (obs.status.reason) report.reason = obs.status.reason;
      if (obs.status.message) report.message = obs.status.message;
      applyAgentState(job, slot, report, ctx);
      const step = extractProgressStep(obs.status.progress);
      if (step !== undefined) applyProgress(job, step, obs.at);
      return;
    }
    case 'PodsObserved':
      foldPods(job, obs, ctx);
      return;
    case 'NodeHealth':
      foldNodeHealth(
        job,
        obs.node,
        { health: obs.health, ready: true, ...(obs.instanceId ? { instanceId: obs.instanceId } : {}) },
        obs.at,
        ctx,
      );
      return;
    case 'Progress':
      applyProgress(job, obs.step, obs.at);
      return;
  }
};
