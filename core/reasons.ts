/**
 * CamelCase reason constants: used in conditions, timeline events, EventBridge detail types, metric
 * labels and Kubernetes Events. One module so that every surface spells them the same.
 */
export const Reason = {
  // lifecycle
  Created: 'Created',
  PodsRunning: 'PodsRunning',
  Running: 'Running',
  Restarting: 'Restarting',
  Succeeded: 'Succeeded',
  Failed: 'Failed',
  Suspended: 'Suspended',
  Resumed: 'Resumed',
  Cancelled: 'Cancelled',
  // faults
  WorkerCrash: 'WorkerCrash',
  WorkerFault: 'WorkerFault',
  PodFailed: 'PodFailed',
  PodMissing: 'PodMissing',
  AgentUnreachable: 'AgentUnreachable',
  NodeFault: 'NodeFault',
  ManualRestart: 'ManualRestart',
  // terminal failure reasons
  MaxRetriesExceeded: 'MaxRetriesExceeded',
  MaxFullJobRestartsExceeded: 'MaxFullJobRestartsExceeded',
  NoProgress: 'NoProgress',
  StartupDeadlineExceeded: 'StartupDeadlineExceeded',
  FaultDeadlineExceeded: 'FaultDeadlineExceeded',
  ActiveDeadlineExceeded: 'ActiveDeadlineExceeded',
  InvalidSpec: 'InvalidSpec',
  // shell
  /** An action failed with a terminal (non-retryable) error; recorded in the timeline, then skipped. */
  ActionFailed: 'ActionFailed',
  // log path (core/decide/log-path.ts)
  /** Agents report in but no worker line arrives: hang verdicts are held (condition type and reason). */
  LogsNotArriving: 'LogsNotArriving',
  /** Worker lines arrive again: the LogsNotArriving condition is cleared. */
  LogsArriving: 'LogsArriving',
  // elastic training (core/decide/elastic.ts)
  /** A scaling began (or the first placement chose a size). */
  Scaling: 'Scaling',
  ScaledUp: 'ScaledUp',
  ScaledDown: 'ScaledDown',
  /** A fault or a capacity loss overtook a scaling. */
  ScalingAborted: 'ScalingAborted',
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/**
 * Log-rule reasons are built from the rule's reason name (`ruleReasonNames`), as HyperPod's agent builds
 * them from the rule name: `LogHang_<name>`, `LogSlow_<name>`, `LogFault_<name>`.
 */
export const logRuleReason = (verdict: 'HANGING' | 'SLOW' | 'FAULTED', reasonName: string): string =>
  `${verdict === 'HANGING' ? 'LogHang' : verdict === 'SLOW' ? 'LogSlow' : 'LogFault'}_${reasonName}`;

/** Characters a reason name keeps as written: every name the manifest accepted before any text was. */
const REASON_SAFE = /^[A-Za-z0-9_.-]+$/;

/** FNV-1a 32-bit of `text`, as 8 hex digits: a stable, dependency-free tag for disambiguation. */
const hash8 = (text: string): string => {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h >>> 0).toString(16).padStart(8, '0');
};

/**
 * A rule name as reason text, before collisions are resolved: a name of letters, digits, `_`, `.` and `-`
 * is kept as written; any other name is folded to ASCII (accents dropped), split at every other
 * character, and its words joined in camel case (`GPU Error` → `GPUError`, `loss spike!` → `lossSpike`).
 * Empty when nothing is left (`日本語`).
 */
function reasonBase(name: string): string {
  if (REASON_SAFE.test(name)) return name;
  const words = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .split(/[^A-Za-z0-9_.-]+/)
    .filter((w) => w !== '');
  return words.map((w, i) => (i === 0 ? w : w[0]?.toUpperCase() + w.slice(1))).join('');
}

/**
 * The reason name of every rule of one job (the text after `LogHang_`/`LogSlow_`/`LogFault_`), keyed by
 * rule name. Reasons are CamelCase-like constants reused in conditions, events and timelines, so a name
 * such as `GPU Error` (the operator accepts any text) is mapped to `GPUError`.
 *
 * Invariants: the result is a function of the set of names (order does not matter); it contains only
 * letters, digits, `_`, `.` and `-`; distinct names get distinct reason names. A name that is already
 * reason-safe keeps itself. A mapped name keeps its plain form unless another name of the set maps to
 * the same text; then it gets `_<8 hex digits>` of an FNV-1a hash of the original name (as does a name
 * with nothing left to keep: `Rule_<hash>`).
 */
export function ruleReasonNames(names: readonly string[]): Map<string, string> {
  const unique = [...new Set(names)].sort();
  const base = new Map(unique.map((n) => [n, reasonBase(n)]));
  const count = new Map<string, number>();
  for (const b of base.values()) count.set(b, (count.get(b) ?? 0) + 1);
  const out = new Map<string, string>();
  const taken = new Set<string>();
  // names kept as written first: they never change because another rule appeared
  for (const n of unique) {
    if (base.get(n) === n) {
      out.set(n, n);
      taken.add(n);
    }
  }
  for (const n of unique) {
    if (out.has(n)) continue;
    const b = base.get(n) ?? '';
    let reason = b !== '' && count.get(b) === 1 && !taken.has(b) ? b : `${b || 'Rule'}_${hash8(n)}`;
    for (let salt = 1; taken.has(reason); salt++) reason = `${b || 'Rule'}_${hash8(`${salt}:${n}`)}`;
    out.set(n, reason);
    taken.add(reason);
  }
  return out;
}

/** The reason name of a rule considered alone (no other rule to collide with); see `ruleReasonNames`. */
export const ruleReasonName = (name: string): string => ruleReasonNames([name]).get(name) ?? name;

/**
 * Lifecycle event names published to EventBridge (`detail-type`) and kept in the job timeline.
 */
export const LifecycleEvent = {
  JobSubmitted: 'JobSubmitted',
  FaultDetected: 'FaultDetected',
  RestartStarted: 'RestartStarted',
  RestartCompleted: 'RestartCompleted',
  JobSucceeded: 'JobSucceeded',
  JobFailed: 'JobFailed',
  JobCancelled: 'JobCancelled',
} as const;
export type LifecycleEvent = (typeof LifecycleEvent)[keyof typeof LifecycleEvent];
