/**
 * Records of big jobs grown by many job-level restarts, built directly (decide would compact them on the
 * way): a job of `replicas` pods whose slots all carry a node, an IP and an agent state, and `restarts`
 * job-level remediations, each listing every pod, rank and node of the job, plus node fault counts and
 * applied command ids. Used by the compaction tests in core and through the api handler.
 */
import { newJobRecord } from '../../core/decide.ts';
import type { JobRecord, Remediation } from '../../core/job.ts';
import type { JobSpec } from '../../core/spec/types.ts';

/** An EKS-style node name (the realistic worst of what a record lists per pod). */
export const nodeName = (i: number): string =>
  `ip-10-${(i >> 8) & 255}-${i & 255}-7.us-west-2.compute.internal`;

/** The job's first record, every slot Running on its node with its agent RUNNING (as after a start). */
export const runningRecord = (spec: JobSpec, now = 1_000_000): JobRecord => {
  const { job } = newJobRecord(spec, { uid: 'uid-big', submittedBy: 'alice', now });
  job.phase = 'Running';
  job.startedGeneration = 0;
  job.runningSince = now;
  job.pods = job.pods.map((s, i) => ({
    ...s,
    podPhase: 'Running',
    nodeName: nodeName(i),
    ip: `10.${(i >> 8) & 255}.${i & 255}.17`,
    agent: { state: 'RUNNING', generation: job.generation, at: now },
    lastSeenAt: now,
    podObservedAt: now,
  }));
  return job;
};

/** One job-level remediation of `job` at `generation`, listing every pod, rank and node. */
export const jobLevelRemediation = (job: JobRecord, generation: number, at: number): Remediation => ({
  generation,
  reason: 'NodeFault',
  level: 'job',
  faultAt: at,
  detectedAt: at + 5,
  recoveredAt: at + 60_000,
  pods: job.pods.map((s) => s.name.replace(/-g?\d+$/, `-${generation}`)),
  ranks: job.pods.map((_, i) => i),
  nodes: job.pods.map((_, i) => nodeName(i)),
  message: `Full job restart ${generation}: node fault reported by HyperPod health monitoring`,
});

/**
 * `job` after `restarts` job-level restarts, each remembered as a remediation listing the whole job, with
 * node fault counts, the full 64 applied command ids and (`ruleStateBytes`) rule-engine state.
 */
export const grow = (
  job: JobRecord,
  o: { restarts: number; ruleStateBytes?: number; commands?: number },
): JobRecord => {
  const out = structuredClone(job);
  for (let g = 1; g <= o.restarts; g++) {
    out.remediations.push(jobLevelRemediation(out, g, 2_000_000 + g * 100_000));
  }
  out.remediations = out.remediations.slice(-50);
  out.generation = o.restarts;
  out.startedGeneration = o.restarts;
  out.restartCount = o.restarts;
  out.restartStatus = { ...out.restartStatus, fullJobRestartCount: o.restarts };
  out.pods = out.pods.map((s) => ({ ...s, agent: { state: 'RUNNING', generation: o.restarts, at: 9e6 } }));
  out.nodeFaults = Object.fromEntries(out.pods.map((_, i) => [nodeName(i), 1 + (i % 3)]));
  out.appliedCommands = Array.from({ length: o.commands ?? 64 }, (_, i) => `cmd-${i}-${'0'.repeat(26)}`);
  if (o.ruleStateBytes) out.ruleState = { generation: o.restarts, blob: 'r'.repeat(o.ruleStateBytes) };
  return out;
};
