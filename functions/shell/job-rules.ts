/**
 * The log rules of a job as the `logs` and `sweep` handlers use them: compiled once per (job uid, rules)
 * and cached in module scope (a warm Lambda reuses them across batches), and the rule state to
 * continue from — the stored one when it belongs to the job's current generation, else a fresh one whose
 * timers start when the generation started running.
 *
 * Invariant: the result is a function of the job record alone, so a reconcile that lost its write and
 * re-read the job recomputes it from the winner's record (observations as a function of the job). The
 * caches only skip work whose result is known: compiling rules the job already had, and parsing a rule
 * state this instance wrote itself at exactly the record's version (a version is written once).
 */
import type { JobRecord } from '../../core/job.ts';
import type { Observation, RuleFinding } from '../../core/observations.ts';
import { type CompiledRules, compileRules, loadRuleState } from '../../rules/engine.ts';
import { effectiveRules } from '../../rules/presets/index.ts';
import type { RuleState } from '../../rules/state.ts';

/**
 * Compiled rules cached per job uid; the key (the job's own rules and its preset names, as JSON) detects
 * rule updates (UpdateRules). Bounded in size.
 */
const cache = new Map<string, { key: string; compiled: CompiledRules | null }>();
/** Jobs whose compiled rules stay cached per Lambda instance. */
export const RULE_CACHE_SIZE = 256;

/**
 * The job's compiled effective rules (user rules + presets), or `null` when it has none. Throws the
 * engine's compile error for a rule that cannot compile (the parser normally rejects those first).
 */
export function compiledRulesFor(job: JobRecord): CompiledRules | null {
  // Presets are fixed per build: their names stand for them (effectiveRules reads nothing else).
  const key = JSON.stringify([job.spec.runPolicy.logMonitoringConfiguration, job.spec.trainkeeper.presets]);
  const hit = cache.get(job.uid);
  if (hit && hit.key === key) {
    touch(cache, job.uid, hit, RULE_CACHE_SIZE);
    return hit.compiled;
  }
  const rules = effectiveRules(job.spec);
  const compiled = rules.length === 0 ? null : compileRules(rules);
  touch(cache, job.uid, { key, compiled }, RULE_CACHE_SIZE);
  return compiled;
}

/** Jobs whose last written rule state stays cached per Lambda instance (a state is up to a record's size). */
export const RULE_STATE_CACHE_SIZE = 64;

/** Rule states this instance wrote, per job uid: the state object and the record version that carries it. */
const written = new Map<string, { version: number; state: RuleState }>();

/**
 * The rule state to continue from for the job's current generation: the one this instance wrote at the
 * record's version when there is one (no parse: it is the engine's own output), else the stored one
 * parsed, or a fresh one.
 */
export function ruleStateFor(compiled: CompiledRules, job: JobRecord, now: number): RuleState {
  const hit = written.get(job.uid);
  if (hit && hit.version === job.version && hit.state.generation === job.generation) {
    touch(written, job.uid, hit, RULE_STATE_CACHE_SIZE);
    return hit.state;
  }
  return loadRuleState(compiled, job.ruleState, job.generation, job.runningSince ?? now);
}

/**
 * Notes that `job`, as just written, carries `state` (an `evaluateLines`/`tickRules` result): the next
 * `ruleStateFor` of that version skips the parse. Only when the record holds that very object (decide
 * stored it as given, not compacted or replaced); the engine never edits a state it was given, and
 * neither may the caller after this.
 */
export function rememberRuleState(job: JobRecord | undefined, state: RuleState | undefined): void {
  if (!job || !state || job.ruleState !== state) return;
  touch(written, job.uid, { version: job.version, state }, RULE_STATE_CACHE_SIZE);
}

/** Sets `key` as the most recent entry of an LRU map of at most `size` entries. */
function touch<V>(map: Map<string, V>, key: string, value: V, size: number): void {
  // Map iteration order is insertion order: re-insert to keep LRU order.
  map.delete(key);
  map.set(key, value);
  while (map.size > size) {
    const oldest = map.keys().next().value;
    if (oldest === undefined) break;
    map.delete(oldest);
  }
}

/** The observation carrying a rule evaluation's outcome: findings if any, else the advanced state. */
export function ruleObservation(state: unknown, findings: RuleFinding[]): Observation {
  return findings.length > 0
    ? { type: 'RuleFindings', findings, ruleState: state }
    : { type: 'RuleStateAdvanced', ruleState: state };
}
