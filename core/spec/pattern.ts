import { RE2JS } from 're2js';

/**
 * Why a log-rule pattern (`logPattern`, `stopPattern`) cannot be used, or `undefined` when it can.
 *
 * Patterns are compiled with RE2 (`re2js`) so that matching a line takes linear time: one user's
 * catastrophic pattern must not stall the shared logs Lambda. The accepted dialect is therefore RE2's —
 * no backreferences (`\1`), no lookaround (`(?=…)`, `(?<!…)`) — while Python's named groups
 * `(?P<name>…)`, inline flags `(?i)` and everything HyperPod's documented examples use still compile.
 *
 * Invariant: returns `undefined` exactly when `RE2JS.compile(pattern)` succeeds; the message is the
 * compiler's own reason with its "error parsing regexp: " prefix removed, plus a hint for the two
 * constructs people most often bring over from Python.
 */
export function patternError(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    const reason = (err instanceof Error ? err.message : String(err)).replace(
      /^error parsing regexp:\s*/,
      '',
    );
    if (/\\[1-9]/.test(pattern) && /escape/.test(reason)) {
      return `${reason} (backreferences are not supported: patterns use the RE2 dialect)`;
    }
    if (/\(\?<?[=!]/.test(pattern)) {
      return `${reason} (lookahead/lookbehind is not supported: patterns use the RE2 dialect)`;
    }
    return reason;
  }
}
