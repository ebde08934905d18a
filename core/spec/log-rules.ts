/**
 * The one validator of log-monitoring rules (hyperpod-spec §3.1 plus TrainKeeper's `ranks`/`scope`),
 * wherever a rule list comes from: a manifest's `spec.runPolicy.logMonitoringConfiguration`
 * (core/spec/parse.ts), a rule list replacing a job's rules (API `PUT …/rules`, the bus `UpdateRules`
 * command) and the presets TrainKeeper ships (rules/presets/*.ts).
 *
 * Invariants:
 * - Every problem is reported at once, as `{path, message}` under the `path` the caller names
 *   (`spec.runPolicy.logMonitoringConfiguration[1].operator`, `rules[1].operator`), sorted as the fields
 *   appear in the list; messages are the manifest parser's (core/spec/schema.ts).
 * - Besides each rule's own fields: names are unique in the list (read from the raw list defensively, so
 *   the check runs even when a rule is malformed). Names are any text (the operator puts no pattern on
 *   them); core/reasons.ts `ruleReasonNames` maps them into fault reasons.
 * - `operator` without `metricThreshold` (or the reverse) is accepted with a warning (`logRuleWarnings`):
 *   metric evaluation is skipped for that rule, as HyperPod's agent does.
 * - On success every default is applied, the output has no field the input did not give, and every
 *   pattern compiles in the RE2 dialect (core/spec/pattern.ts). `source` is `user`; callers that load
 *   presets re-label it.
 * - Pure: no I/O, no clock.
 */
import { z } from 'zod';
import { patternError } from './pattern.ts';
import {
  asArray,
  asObject,
  checkUnique,
  dedupe,
  defaultInt,
  finiteNumber,
  inDocumentOrder,
  int,
  messageFor,
  optionalInt,
  strict,
  toFieldIssues,
} from './schema.ts';
import type { FieldIssue, LogRule } from './types.ts';

/** The start of every invalid-pattern message (`namePatternRules` names the rule in it). */
const INVALID_PATTERN = 'is not a valid pattern';

/** A `logPattern`/`stopPattern`: non-empty and valid in the RE2 dialect (matched in linear time). */
const pattern = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    const error = patternError(value);
    if (error) ctx.addIssue({ code: 'custom', message: `${INVALID_PATTERN}: ${error}` });
  });

/**
 * Longest rule name accepted. The operator puts no pattern on rule names (AWS's own example is `GPU Error`),
 * so any text is a name; the bound keeps reasons, metric labels and stored rule state small.
 */
export const MAX_RULE_NAME_LENGTH = 128;

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

const logRuleSchema = strict({
  name: z
    .string()
    .min(1)
    .max(MAX_RULE_NAME_LENGTH)
    .refine((name) => !CONTROL_CHARACTER.test(name), {
      error: 'must not contain control characters (line breaks, tabs, ...)',
    })
    .refine((name) => name !== '__proto__', {
      error: 'is reserved: `__proto__` cannot key the stored rule state',
    }),
  logPattern: pattern,
  stopPattern: pattern.optional(),
  expectedStartCutOffInSeconds: optionalInt(1),
  expectedRecurringFrequencyInSeconds: optionalInt(1),
  metricThreshold: finiteNumber().optional(),
  operator: z.enum(['gt', 'gteq', 'lt', 'lteq', 'eq']).optional(),
  metricEvaluationDataPoints: defaultInt(1, 1),
  faultOnMatch: z.boolean().default(false),
  ranks: z.array(int(0)).min(1).optional(),
  scope: z.enum(['job', 'stream']).default('job'),
});

const logRuleListSchema = z.array(logRuleSchema);

/** The outcome of `parseLogRules`. */
export type LogRulesResult = { ok: true; rules: LogRule[] } | { ok: false; errors: FieldIssue[] };

/** Checks across the rules of one list, on the raw list: unique names. */
function crossRuleErrors(list: unknown, path: string): FieldIssue[] {
  return checkUnique(asArray(list), path, 'rule');
}

/**
 * Warnings for rules that are accepted but partly inert, on the raw list (any shape): `operator` without
 * `metricThreshold`, or the other way round. HyperPod's agent compares a captured metric only when both
 * are set and otherwise treats a match as HEALTHY; the engine does the same (rules/engine.ts), so such a
 * rule still tracks matches and time, and only its metric evaluation is skipped.
 */
export function logRuleWarnings(list: unknown, path: string): FieldIssue[] {
  const warnings: FieldIssue[] = [];
  asArray(list).forEach((r, i) => {
    const rule = asObject(r);
    if (!rule) return;
    const hasOperator = rule.operator !== undefined;
    const hasThreshold = rule.metricThreshold !== undefined;
    if (hasOperator && !hasThreshold) {
      warnings.push({
        path: `${path}[${i}].operator`,
        message: 'is ignored without `metricThreshold`: metric evaluation is skipped for this rule',
      });
    }
    if (hasThreshold && !hasOperator) {
      warnings.push({
        path: `${path}[${i}].metricThreshold`,
        message: 'is ignored without `operator`: metric evaluation is skipped for this rule',
      });
    }
  });
  return warnings;
}

function toLogRule(rule: z.output<typeof logRuleSchema>): LogRule {
  const out: LogRule = {
    name: rule.name,
    logPattern: rule.logPattern,
    metricEvaluationDataPoints: rule.metricEvaluationDataPoints,
    faultOnMatch: rule.faultOnMatch,
    scope: rule.scope,
    source: { kind: 'user' },
  };
  if (rule.stopPattern !== undefined) out.stopPattern = rule.stopPattern;
  if (rule.expectedStartCutOffInSeconds !== undefined)
    out.expectedStartCutOffInSeconds = rule.expectedStartCutOffInSeconds;
  if (rule.expectedRecurringFrequencyInSeconds !== undefined) {
    out.expectedRecurringFrequencyInSeconds = rule.expectedRecurringFrequencyInSeconds;
  }
  if (rule.metricThreshold !== undefined) out.metricThreshold = rule.metricThreshold;
  if (rule.operator !== undefined) out.operator = rule.operator;
  if (rule.ranks !== undefined) out.ranks = rule.ranks;
  return out;
}

/**
 * Names the rule in each invalid-pattern message (`is not a valid pattern (rule \`BadRegex\`): …`), read
 * from the raw list, so a reader of `…[1].logPattern` need not count rules. The name goes in the message,
 * not the path: `path` stays a plain field path (`…logMonitoringConfiguration[1].logPattern`) that API
 * clients and the CLI's `--output json` parse, and a rule name is any text (dots, brackets, spaces).
 */
function namePatternRules(issues: FieldIssue[], list: unknown, path: string): FieldIssue[] {
  const rules = asArray(list);
  return issues.map((issue) => {
    if (!issue.message.startsWith(`${INVALID_PATTERN}:`)) return issue;
    const at = /^\[(\d+)\]\.(?:logPattern|stopPattern)$/.exec(issue.path.slice(path.length));
    const name = at && issue.path.startsWith(path) ? asObject(rules[Number(at[1])])?.name : undefined;
    if (typeof name !== 'string' || name === '') return issue;
    const reason = issue.message.slice(INVALID_PATTERN.length);
    return { ...issue, message: `${INVALID_PATTERN} (rule \`${name}\`)${reason}` };
  });
}

/**
 * Validates a list of log rules found at `path` (a formatted field path, e.g. `rules`). Never throws for
 * bad input: every problem comes back in `errors`, with paths under `path`.
 */
export function parseLogRules(list: unknown, path: string): LogRulesResult {
  const result = logRuleListSchema.safeParse(list, { error: messageFor });
  const errors = [
    ...(result.success ? [] : namePatternRules(toFieldIssues(result.error.issues, path), list, path)),
    ...crossRuleErrors(list, path),
  ];
  if (!result.success || errors.length > 0) {
    return { ok: false, errors: inDocumentOrder(dedupe(errors), list, path) };
  }
  return { ok: true, rules: result.data.map(toLogRule) };
}
