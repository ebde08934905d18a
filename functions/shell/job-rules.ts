/**
 * The log rules of a job as the `logs` and `sweep` handlers use them: compiled once per (job uid, rules
 * hash) and cached in module scope (a warm Lambda reuses them across batches), and the rule state to
 * continue from — the stored one when it belongs to the job's current generation, else a fresh one whose
 * timers start when the generation started running.
 *
 * Invariant: the result is a function of the job record alone, so a reconcile that lost its write and
 * re-read the job recomputes it from the winner's record (observations as a function of the job).
 */
import { createHash } from 'node:crypto';
import type { JobRecord } from '../../core/job.ts';
import type { Observation, RuleFinding } from '../../core/observations.ts';
import { type CompiledRules, compileRules, loadRuleState } from '../../rules/engine.ts';
import { effectiveRules } from '../../rules/presets/index.ts';
import type { RuleState } from '../../rules/state.ts';

/** Compiled rules cached per job uid; the hash detects rule updates (UpdateRules). Bounded in size. */
const cache = new Map<string, { hash: string; compiled: CompiledRules | null }>();
/** Jobs whose compiled rules stay cached per Lambda instance. */
export const RULE_CACHE_SIZE = 256;

/**
 * The job's compiled effective rules (user rules + presets), or `null` when it has none. Throws the
 * engine's compile error for a rule that cannot compile (the parser normally rejects those first).
 */
export function compiledRulesFor(job: JobRecord): CompiledRules | null {
  const rules = effectiveRules(job.spec);
  const hash = createHash('sha256').update(JSON.stringify(rules)).digest('base64url');
  const hit = cache.get(job.uid);
  if (hit && hit.hash === hash) {
    // Refresh recency: Map iteration order is insertion order, so re-insert to keep LRU order.
    cache.delete(job.uid);
    cache.set(job.uid, hit);
    return hit.compiled;
  }
  const compiled = rules.length === 0 ? null : compileRules(rules);
  cache.set(job.uid, { hash, compiled });
  while (cache.size > RULE_CACHE_SIZE) {
    const oldest = cache.keys().next().value;
    if (oldest === undefined) break;
    cache.delete(oldest);
  }
  return compiled;
}

/** The rule state to continue from for the job's current generation. */
export function ruleStateFor(compiled: CompiledRules, job: JobRecord, now: number): RuleState {
  return loadRuleState(compiled, job.ruleState, job.generation, job.runningSince ?? now);
}

/** The observation carrying a rule evaluation's outcome: findings if any, else the advanced state. */
export function ruleObservation(state: unknown, findings: RuleFinding[]): Observation {
  return findings.length > 0
    ? { type: 'RuleFindings', findings, ruleState: state }
    : { type: 'RuleStateAdvanced', ruleState: state };
}
