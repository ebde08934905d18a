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
 * Times are epoch milliseconds.
 */

export type Verdict = 'WAITING' | 'HEALTHY' | 'SLOW' | 'HANGING' | 'FAULTED';

/** Verdicts that are faults, in precedence order (FAULTED > HANGING > SLOW). */
export type FaultVerdict = 'FAULTED' | 'HANGING' | 'SLOW';

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

/** A rule that left HEALTHY/WAITING. `reason` is `LogHang_<rule>`, `LogSlow_<rule>` or `LogFault_<rule>`. */
export interface RuleFinding {
  rule: string;
  verdict: FaultVerdict;
  reason: string;
  /** The stream that caused it; for a job-wide hang, the rule's scope (`job`). */
  stream: string;
  rank?: number;
  /** When the condition was detected (epoch ms): the line's time, or the deadline that passed. */
  at: number;
  /** The matched line (or, for a hang, the last matched line if any). */
  text?: string;
  /** The captured metric, for SLOW. */
  value?: number;
  /** The restart generation the rule state belonged to. */
  generation: number;
}
