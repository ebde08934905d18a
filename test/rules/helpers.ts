/**
 * Test helpers for the rule engine: a `LogRule` with the parser's defaults, and a scenario runner that
 * feeds batches and ticks and returns findings as compact strings (`VERDICT rule stream @seconds`).
 */

import type { RuleFinding } from '../../core/observations.ts';
import type { LogRule } from '../../core/spec/types.ts';
import {
  compileRules,
  evaluateLines,
  initialRuleState,
  type RuleValue,
  tickRules,
} from '../../rules/engine.ts';
import type { RuleState } from '../../rules/state.ts';
import type { LogLine } from '../../rules/types.ts';

/** A rule with the manifest parser's defaults applied. */
export const rule = (partial: Partial<LogRule> & { name?: string; logPattern: string }): LogRule => ({
  name: 'r',
  metricEvaluationDataPoints: 1,
  faultOnMatch: false,
  scope: 'job',
  source: { kind: 'user' },
  ...partial,
});

/** `[seconds, text]` or `[seconds, text, stream, rank]`. */
export type L = [number, string] | [number, string, string, number];

/** A step: a batch of lines evaluated at `now` (default: the batch's last time), or a tick. */
export type Step = { lines: L[]; now?: number } | { tick: number };

const toLine = ([s, text, stream, rank]: L): LogLine => {
  const line: LogLine = { stream: stream ?? 'pod-0/0', timestamp: s * 1000, text };
  if (rank !== undefined) line.rank = rank;
  else line.rank = 0;
  return line;
};

/** Compact form of a finding, for tables. */
export const brief = (f: RuleFinding): string => `${f.verdict} ${f.rule} ${f.stream} @${f.at / 1000}`;

/** Runs steps from a generation started at t = 0; returns compact findings, raw findings, values, state. */
export function scenario(
  rules: LogRule[],
  steps: Step[],
): { findings: string[]; raw: RuleFinding[]; values: RuleValue[]; state: RuleState } {
  const c = compileRules(rules);
  let state = initialRuleState(c, 1, 0);
  const raw: RuleFinding[] = [];
  const values: RuleValue[] = [];
  for (const step of steps) {
    if ('tick' in step) {
      const out = tickRules(c, state, step.tick * 1000);
      state = out.state;
      raw.push(...out.findings);
    } else {
      const lines = step.lines.map(toLine);
      const now = step.now !== undefined ? step.now * 1000 : Math.max(0, ...lines.map((l) => l.timestamp));
      const out = evaluateLines(c, state, lines, now);
      state = out.state;
      raw.push(...out.findings);
      values.push(...out.values);
    }
  }
  return { findings: raw.map(brief), raw, values, state };
}
