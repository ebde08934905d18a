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
 * - a command whose id the record lists among the applied ones is a replay (terminal jobs take none: the
 *   caller sees its id missing from the record and answers that the job is finished).
 *
 * Training progress is a fact about the job, not about a generation or a pod: the step an agent reports
 * (heartbeat or `/status`, parsed by `progressStep`) counts whichever generation or pod it came from, as
 * long as the report is attributed to this job; the step only ever moves forward (`applyProgress`).
 */
import type { AgentState, StatusBody } from '../agent-protocol.ts';
import { AGENT_STATES, progressStep } from '../agent-protocol.ts';
import type { JobRecord, PodSlot } from '../job.ts';
import { APPLIED_COMMANDS_KEPT, isCommandApplied, isStarted, isTerminal } from '../job.ts';
import type { Observation, ObservedNode, RuleFinding } from '../observations.ts';
import { Reason } from '../reasons.ts';
import { writableSlot } from './draft.ts';
import { foldCapacity } from './elastic.ts';
import { type Fault, newFault } from './fault.ts';
import { foldWorkerLines, isLogPathBlind } from './log-path.ts';
import { slotForPod } from './naming.ts';
import { isPodSeen } from './slots.ts';

/** What a fold pass collects besides the record changes. */
export interface FoldContext {
  faults: Fault[];
  /** Commands to apply after folding (in order). */
  commands: Extract<Observation, { type: 'Command' }>[];
  /** Pods listed by the cluster that hold no slot and are not being deleted: delete them. */
  strays: string[];
  /** Rule findings of the current generation, counted in `trainkeeper_rule_findings_total`. */
  findings: { rule: string; verdict: string }[];
  /**
   * Pods whose agent record claims a change that would move the job (COMPLETED, FAULTED, a crashed worker,
   * idle while running): decide asks their agent for `/status` (`PollAgents`) and acts on the answer.
   * Optional so that contexts built elsewhere keep compiling; decide always sets it.
   */
  confirm?: string[];
  /** Hang findings held because the job's worker lines are not arriving (see `isLogPathBlind`). */
  heldHangs?: RuleFinding[];
  /**
   * The faults (also in `faults`) built from an agent's FAULTED report: when several pods' agents
   * faulted in one pass, only the earliest is blamed (`withoutCollateral`, decide/fault.ts).
   */
  faulted?: Fault[];
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

/**
 * Records training progress (the one place it is applied); true when the step advanced, which resets the
 * no-progress count. A step at or below the recorded one changes nothing.
 */
const applyProgress = (job: JobRecord, step: number | undefined, at: number): boolean => {
  if (step === undefined || (job.progress.step !== undefined && step <= job.progress.step)) return false;
  job.progress = { step, at, restartsWithoutProgress: 0 };
  return true;
};

const faultFromAgent = (
  slot: PodSlot,
  reason: string | undefined,
  message: string | undefined,
  at: number,
): Fault =>
  newFault(
    {
      reason: reason || Reason.WorkerFault,
      level: 'process',
      faultAt: at,
      message: message || `Agent of pod ${slot.name} reported ${reason || Reason.WorkerFault}`,
    },
    slot,
  );

/**
 * Applies one agent state report (record or poll). Returns false when it was stale and ignored.
 */
const applyAgentState = (
  job: JobRecord,
  seen: PodSlot,
  report: {
    state: AgentState;
    generation: number;
    at: number;
    reason?: string;
    message?: string;
    /** When the agent says it entered `state` (its `/status` transitions), if earlier than `at`. */
    enteredAt?: number;
  },
  ctx: FoldContext,
): boolean => {
  if (seen.agent && report.at < seen.agent.at) return false;
  if (isGenerationBound(report.state) && report.generation !== job.generation) return false;
  const slot = writableSlot(job, seen);
  slot.agent = { state: report.state, generation: report.generation, at: report.at };
  if (report.reason) slot.agent.reason = report.reason;
  if (slot.lastSeenAt === undefined || report.at > slot.lastSeenAt) slot.lastSeenAt = report.at;
  if (slot.unreachable) delete slot.unreachable;
  if (report.state === 'FAULTED' && slot.groupRank !== null && isStarted(job)) {
    const fault = faultFromAgent(slot, report.reason, report.message, report.enteredAt ?? report.at);
    ctx.faults.push(fault);
    ctx.faulted?.push(fault);
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

/**
 * Whether an agent in `state` (of `generation`, reported at `at`) would move the job if believed: a
 * run-bound COMPLETED or FAULTED the slot does not already hold, or an idle agent in a running
 * generation (its workers are gone). Such a claim read from the log path is confirmed with `/status`.
 */
const claimsChange = (
  job: JobRecord,
  slot: PodSlot,
  state: AgentState,
  generation: number,
  at: number,
): boolean => {
  if (state === 'COMPLETED' || state === 'FAULTED') {
    return !(slot.agent?.state === state && slot.agent.generation === generation);
  }
  return (
    (state === 'READY' || state === 'INIT') &&
    job.phase === 'Running' &&
    slot.groupRank !== null &&
    isStarted(job) &&
    job.runningSince !== undefined &&
    at > job.runningSince
  );
};

const foldPods = (job: JobRecord, obs: Extract<Observation, { type: 'PodsObserved' }>, ctx: FoldContext) => {
  const listed = new Map(obs.pods.map((p) => [p.name, p]));
  const nodes = new Map(obs.nodes.map((n) => [n.name, n]));
  for (const seen of job.pods) {
    const pod = listed.get(seen.name);
    if (seen.podPhase === 'Deleting') continue;
    if (!pod) {
      // A list taken before the pod was first seen (or before its agent last spoke) is old news.
      const newer =
        obs.at > (seen.podObservedAt ?? Number.NEGATIVE_INFINITY) &&
        obs.at > (seen.lastSeenAt ?? Number.NEGATIVE_INFINITY);
      if (isPodSeen(seen) && newer) {
        ctx.faults.push(
          newFault(
            {
              reason: Reason.PodMissing,
              level: 'pod',
              faultAt: obs.at,
              message: `Pod ${seen.name} disappeared`,
            },
            seen,
          ),
        );
      }
      continue;
    }
    const changes =
      seen.podObservedAt === undefined ||
      pod.phase !== seen.podPhase ||
      (pod.nodeName && pod.nodeName !== seen.nodeName) ||
      (pod.podIP && pod.podIP !== seen.ip);
    const slot = changes ? writableSlot(job, seen) : seen;
    slot.podObservedAt ??= obs.at;
    if (pod.phase !== slot.podPhase) slot.podPhase = pod.phase;
    if (pod.nodeName && pod.nodeName !== slot.nodeName) slot.nodeName = pod.nodeName;
    if (pod.podIP && pod.podIP !== slot.ip) slot.ip = pod.podIP;
    const faultAt = pod.deletionTimestamp ?? obs.at;
    if (pod.deletionTimestamp !== undefined) {
      ctx.faults.push(
        newFault(
          { reason: Reason.PodMissing, level: 'pod', faultAt, message: `Pod ${slot.name} was deleted` },
          slot,
        ),
      );
    } else if (pod.phase === 'Failed' || pod.phase === 'Succeeded' || pod.phase === 'Unknown') {
      const exit = pod.containers.find((c) => c.state === 'terminated');
      const detail = exit
        ? ` (container ${exit.name} exit code ${exit.exitCode ?? '?'}${exit.reason ? `, ${exit.reason}` : ''})`
        : '';
      ctx.faults.push(
        newFault(
          {
            reason: Reason.PodFailed,
            level: 'pod',
            faultAt,
            message: `Pod ${slot.name} is ${pod.phase}${detail}`,
            force: pod.phase === 'Unknown',
          },
          slot,
        ),
      );
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
    ctx.faults.push(
      newFault(
        {
          reason: Reason.NodeFault,
          level: 'pod',
          node: nodeName,
          faultAt: at,
          message: `Found unhealthy node ${nodeName}`,
          force: true,
          ...(node.instanceId ? { instanceId: node.instanceId } : {}),
        },
        slot,
      ),
    );
  }
};

/**
 * Folds one observation into the draft. Terminal jobs take nothing; suspended jobs take only commands.
 */
export const foldObservation = (job: JobRecord, obs: Observation, ctx: FoldContext): void => {
  if (isTerminal(job.phase)) return;
  if (obs.type === 'Command') {
    if (isCommandApplied(job, obs.id)) return;
    // Applied in the order of the writes that record them: the write that carries this id applies it.
    job.appliedCommands = [...(job.appliedCommands ?? []), obs.id].slice(-APPLIED_COMMANDS_KEPT);
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
        // Silence the log path caused is no hang (core/decide/log-path.ts): held, never a restart.
        if (finding.verdict === 'HANGING' && isLogPathBlind(job, finding.at)) {
          ctx.heldHangs?.push(finding);
          continue;
        }
        const podOfStream = finding.stream.includes('/')
          ? finding.stream.slice(0, finding.stream.lastIndexOf('/'))
          : finding.stream;
        const slot = slotForPod(job, podOfStream);
        // The finding's rank is a global worker rank (not the slot's group rank), so the slot gives
        // only the pod and node.
        ctx.faults.push(
          newFault({
            reason: finding.reason,
            level: 'process',
            faultAt: finding.at,
            message: `Rule ${finding.rule} reported ${finding.verdict}${finding.text !== undefined ? `: ${finding.text}` : ''}`,
            pod: slot?.name,
            node: slot?.nodeName,
            rank: finding.rank,
          }),
        );
      }
      return;
    }
    case 'RuleStateAdvanced':
      job.ruleState = obs.ruleState;
      return;
    case 'AgentRecord': {
      // A record travelled the log path, which every pod of the cluster can write to: it may refresh
      // liveness and progress, but a claim that would move the job is only a reason to ask the agent
      // (`ctx.confirm` → PollAgents); the job moves on the agent's `/status` answer (`AgentPolled`).
      const record = obs.record;
      const at = obs.at;
      if (record.kind === 'heartbeat') applyProgress(job, progressStep(record.progress), at);
      const slot = slotForPod(job, obs.pod);
      if (!slot || slot.podPhase === 'Deleting') return;
      if (record.generation !== job.generation && isGenerationBound(record.state)) return;
      if (slot.agent && at < slot.agent.at) return;
      const crashed =
        record.kind === 'worker-exit' &&
        (record.exitCode !== 0 || record.signal !== null) &&
        slot.groupRank !== null &&
        isStarted(job);
      if (crashed || claimsChange(job, slot, record.state, record.generation, at)) {
        ctx.confirm?.push(slot.name);
        return;
      }
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
      const newAgent =
        record.kind === 'heartbeat' &&
        (!slot.agent || slot.agent.state !== record.state || slot.agent.generation !== record.generation);
      if (!newAgent && slot.lastSeenAt !== undefined && at <= slot.lastSeenAt) return;
      const w = writableSlot(job, slot);
      if (w.lastSeenAt === undefined || at > w.lastSeenAt) w.lastSeenAt = at;
      if (newAgent) w.agent = { state: record.state, generation: record.generation, at };
      return;
    }
    case 'AgentPolled': {
      if (obs.status !== null) applyProgress(job, progressStep(obs.status.progress), obs.at);
      const slot = slotForPod(job, obs.pod);
      if (!slot || slot.podPhase === 'Deleting') return;
      if (obs.status === null) {
        if (slot.unreachable && obs.at <= slot.unreachable.lastAt) return;
        if (slot.agent && obs.at < slot.agent.at) return;
        const count = (slot.unreachable?.count ?? 0) + 1;
        const w = writableSlot(job, slot);
        w.unreachable = { count, lastAt: obs.at };
        // An agent that never answered is still starting (the startup deadline covers it).
        if (count >= 2 && w.agent !== undefined) {
          ctx.faults.push(
            newFault(
              {
                reason: Reason.AgentUnreachable,
                level: 'pod',
                faultAt: w.unreachable.lastAt,
                message: `Agent of pod ${w.name} unreachable on ${count} consecutive polls`,
              },
              w,
            ),
          );
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
      const entered = Date.parse(obs.status.transitions?.[state] ?? '');
      if (Number.isFinite(entered) && entered <= obs.at) report.enteredAt = entered;
      if (obs.status.reason) report.reason = obs.status.reason;
      if (obs.status.message) report.message = obs.status.message;
      applyAgentState(job, slot, report, ctx);
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
    case 'NodesObserved':
      foldCapacity(job, obs.nodes, obs.at);
      return;
    case 'WorkerLinesArrived':
      foldWorkerLines(job, obs.at);
      return;
    case 'AgentCallsCutShort':
      job.cutShortAt = obs.at;
      return;
    default: {
      // Exhaustive: a new observation type fails to compile here until it is folded.
      const unhandled: never = obs;
      throw new Error(`foldObservation: unknown observation ${JSON.stringify(unhandled)}`);
    }
  }
};
