/**
 * Rule lists submitted after the job (API `PUT …/rules`, the `UpdateRules` command on the bus): a list of
 * rules, or `{logMonitoringConfiguration: [...]}` as in a manifest, validated by the one rule validator
 * (`parseLogRules`) so that defaults and messages are those of submission; issue paths read `rules[i].field`.
 */
import { z } from 'zod';
import { type LogRulesResult, parseLogRules } from '../../core/spec/log-rules.ts';

const RulesBody = z.union([
  z.array(z.unknown()),
  z
    .object({ logMonitoringConfiguration: z.array(z.unknown()) })
    .transform((v) => v.logMonitoringConfiguration),
]);

/** Validates a submitted rule list; a body that is neither shape is one issue at `rules`. */
export function validateRules(body: unknown): LogRulesResult {
  const list = RulesBody.safeParse(body);
  if (!list.success) {
    return { ok: false, errors: [{ path: 'rules', message: 'expected a list of log rules' }] };
  }
  return parseLogRules(list.data, 'rules');
}
