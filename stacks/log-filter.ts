/**
 * The subscription filter pattern on the application log group: which log events invoke the `logs` Lambda.
 * One pure module read by the deployed `aws.cloudwatch.LogSubscriptionFilter` (stacks/triggers.ts), the
 * stage configuration's validation (stacks/config.ts) and the local control plane, whose stand-in applies
 * the same pattern with CloudWatch's semantics (local/logs/filter-pattern.ts) — so a filter that would drop
 * worker lines on AWS drops them locally too.
 *
 * Modes (`logFilter` in the stage configuration):
 * - `namespaces` (default): a JSON pattern over Fluent Bit's record passing every line of the stage's
 *   allowed namespaces — `{ $.kubernetes.namespace_name = "team-a" || $.kubernetes.namespace_name =
 *   "team-b" }` — and nothing else. Jobs can only run there, and the stock Amazon CloudWatch Observability
 *   add-on writes `kubernetes.namespace_name` on every record even with Labels Off, so worker lines and agent
 *   records both pass while other namespaces' lines never invoke the Lambda. With `*` among the namespaces
 *   it is the empty pattern (every event).
 * - `labels`: `?"trainkeeper.dev/job" ?"agent/v1"` — for a log shipper with Labels On (every line of a
 *   TrainKeeper pod carries the job label key); with the stock add-on (Labels Off) it passes agent
 *   records only, never worker lines: log rules would never fire.
 * - `all`: the empty pattern (every event of the log group).
 * - `{ pattern }`: any pattern, e.g. for a shipper writing plain text lines (a JSON pattern matches no
 *   plain line: use `all` or term patterns there).
 *
 * Invariant: a pattern returned here is at most `MAX_FILTER_PATTERN_LENGTH` characters (CloudWatch Logs API
 * reference, SubscriptionFilter.filterPattern: "Maximum length of 1024"); a longer one is a
 * `LogFilterPatternError` at configuration time, not a failed deploy.
 */
import { AGENT_RECORD_MARKER } from '../core/agent-protocol.ts';
import { POD_LABELS } from '../core/observations.ts';

/** CloudWatch Logs' limit on a subscription filter pattern (characters). */
export const MAX_FILTER_PATTERN_LENGTH = 1024;

/** What `logs` receives from the application log group. */
export type LogFilter = 'namespaces' | 'labels' | 'all' | { pattern: string };

/** The pattern does not fit CloudWatch's limit. */
export class LogFilterPatternError extends Error {
  constructor(
    readonly length: number,
    message: string,
  ) {
    super(message);
    this.name = 'LogFilterPatternError';
  }
}

/** The record field Fluent Bit's kubernetes filter writes the pod's namespace to. */
export const NAMESPACE_SELECTOR = '$.kubernetes.namespace_name';

/**
 * The JSON pattern passing every record of `namespaces` (the empty pattern when one of them is `*`).
 * Namespace names are DNS labels (`[a-z0-9-]`), so they need no escaping inside the quotes.
 */
export function namespaceFilterPattern(namespaces: readonly string[]): string {
  if (namespaces.includes('*')) return '';
  const unique = [...new Set(namespaces)];
  return `{ ${unique.map((ns) => `${NAMESPACE_SELECTOR} = "${ns}"`).join(' || ')} }`;
}

/** The pattern for a shipper with Labels On: the job label key, or the agent record marker. */
export const LABELS_FILTER_PATTERN = `?"${POD_LABELS.job}" ?"${AGENT_RECORD_MARKER}"`;

/**
 * The subscription filter pattern of a stage. Throws `LogFilterPatternError` when it is longer than
 * CloudWatch allows (too many namespaces for `namespaces`, or a long custom pattern).
 */
export function logFilterPattern(filter: LogFilter, allowedNamespaces: readonly string[]): string {
  const pattern =
    typeof filter === 'object'
      ? filter.pattern
      : filter === 'all'
        ? ''
        : filter === 'labels'
          ? LABELS_FILTER_PATTERN
          : namespaceFilterPattern(allowedNamespaces);
  if (pattern.length > MAX_FILTER_PATTERN_LENGTH) {
    const why =
      filter === 'namespaces'
        ? `the namespaces filter over ${new Set(allowedNamespaces).size} namespaces`
        : 'the custom filter pattern';
    throw new LogFilterPatternError(
      pattern.length,
      `${why} is ${pattern.length} characters; CloudWatch Logs allows ${MAX_FILTER_PATTERN_LENGTH}: ` +
        `use fewer namespaces, logFilter "all", or a shorter custom pattern`,
    );
  }
  return pattern;
}
