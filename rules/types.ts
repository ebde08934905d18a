/**
 * The log-rule engine's vocabulary. The engine itself (rules/engine.ts) is pure:
 *
 *   const compiled = compileRules(rules)             // once per job spec (throws RuleCompileError)
 *   let state = initialRuleState(compiled, generation, now)
 *   ({ state, findings } = evaluateLines(compiled, state, lines, now))   // per log batch
 *   ({ state, findings } = tickRules(compiled, state, now))              // time-based checks (sweep)
 *   state = restartRuleState(compiled, state, generation, now)           // a new restart generation
 *
 * `RuleState` is plain JSON (stored in DynamoDB with the job) and bounded in size by rules × streams.
 * Times are epoch milliseconds. What the engine reports (`RuleFinding`, `FaultVerdict`) is an observation
 * of the job and lives with the others in core/observations.ts.
 */

import type { FaultVerdict } from '../core/observations.ts';

export type Verdict = 'WAITING' | 'HEALTHY' | FaultVerdict;

/** One line of training output, already split by the agent/log pipeline. */
export interface LogLine {
  /** Identifies one output stream: `<pod>/<localRank>` for worker lines. */
  stream: string;
  /** Global rank of the worker that printed it, when known. */
  rank?: number;
  /** When the line was written (epoch ms). */
  timestamp: number;
  /** The line without the `[default<N>]:` prefix. */
  text: string;
}
