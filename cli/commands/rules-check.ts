/**
 * The implementation of `trainkeeper rules check` (registered in cli/commands/rules.ts, which loads this
 * module only when the command runs, so other commands do not load the manifest parser and the rule engine).
 */
import { basename } from 'node:path';
import type { RuleFinding } from '../../core/observations.ts';
import { parseJobManifest } from '../../core/spec/parse.ts';
import { compileRules, evaluateLines, initialRuleState } from '../../rules/engine.ts';
import type { NumberedLogLine } from '../../rules/kubectl-log.ts';
import { type LogFormat, parseLog } from '../../rules/log-formats.ts';
import { effectiveRules } from '../../rules/presets/index.ts';
import {
  ExitCode,
  type OutputFormat,
  printData,
  printErr,
  printIssues,
  printOut,
  readInput,
  readInputBytes,
} from '../io.ts';

/** One finding as `rules check` prints it (the `--output json` line schema). */
export interface CheckedFinding {
  rule: string;
  verdict: RuleFinding['verdict'];
  reason: string;
  stream: string;
  rank: number | null;
  at: string;
  lineNumber: number | null;
  text: string | null;
  value: number | null;
}

/** Lines evaluated per engine call (bounded memory for big files; results do not depend on it). */
const CHUNK = 10_000;

/** The input line a finding belongs to: the matched line, or for a hang the first line past the deadline. */
function lineOf(f: RuleFinding, lines: readonly NumberedLogLine[]): number | null {
  const found =
    f.verdict === 'HANGING'
      ? lines.find((l) => l.timestamp > f.at)
      : lines.find((l) => l.timestamp === f.at && l.stream === f.stream && l.text.startsWith(f.text ?? ''));
  return found?.lineNumber ?? null;
}

/** Runs rules over a parsed log; findings in file order. */
export function checkLog(
  rules: Parameters<typeof compileRules>[0],
  lines: readonly NumberedLogLine[],
  start: number,
): CheckedFinding[] {
  const compiled = compileRules(rules);
  let state = initialRuleState(compiled, 0, start);
  const out: CheckedFinding[] = [];
  for (let i = 0; i < lines.length; i += CHUNK) {
    const chunk = lines.slice(i, i + CHUNK);
    const now = chunk.reduce((t, l) => Math.max(t, l.timestamp), state.clock);
    const result = evaluateLines(compiled, state, chunk, now);
    state = result.state;
    for (const f of result.findings) {
      out.push({
        rule: f.rule,
        verdict: f.verdict,
        reason: f.reason,
        stream: f.stream,
        rank: f.rank ?? null,
        at: new Date(f.at).toISOString(),
        lineNumber: lineOf(f, chunk),
        text: f.text ?? null,
        value: f.value ?? null,
      });
    }
  }
  return out.sort((a, b) => (a.lineNumber ?? 0) - (b.lineNumber ?? 0));
}

const textLine = (f: CheckedFinding): string =>
  [
    `line ${f.lineNumber ?? '-'}`,
    f.verdict,
    f.reason,
    `stream ${f.stream}${f.rank === null ? '' : ` (rank ${f.rank})`}`,
    f.at,
    f.value === null ? undefined : `value ${f.value}`,
    f.text === null ? undefined : `| ${f.text}`,
  ]
    .filter((s) => s !== undefined)
    .join('  ');

/** What `rules check` was given (commander's parsed options). */
export interface RulesCheckOptions {
  job: string;
  log: string;
  presets: boolean;
  output: OutputFormat;
  /** The log's format; detected from its content when absent (rules/log-formats.ts). */
  format?: LogFormat;
}

/** Runs `rules check`; returns the exit code (0 nothing found, 3 findings, 1 bad input, 2 usage). */
export async function runRulesCheck(options: RulesCheckOptions): Promise<ExitCode> {
  if (options.job === '-' && options.log === '-') {
    printErr('error: --job and --log cannot both read stdin');
    return ExitCode.Usage;
  }
  const parsed = parseJobManifest(await readInput(options.job));
  if (!parsed.ok) {
    printIssues(parsed.errors, parsed.warnings);
    return ExitCode.Failed;
  }
  const ruleList = options.presets
    ? effectiveRules(parsed.spec)
    : parsed.spec.runPolicy.logMonitoringConfiguration;
  const source = options.log === '-' ? 'stdin' : basename(options.log);
  const log = parseLog(await readInputBytes(options.log), source, options.format);
  if (log.error !== undefined) {
    printErr(`error: ${options.log}: ${log.error} (read as ${log.format}; --format names the format)`);
    return ExitCode.Failed;
  }
  for (const s of log.skipped) printErr(`warning: ${s.reason}`);
  if (log.malformed > 0) {
    const what = log.format === 'cloudwatch-json' ? 'event(s)' : 'record(s)';
    printErr(`warning: ${log.malformed} malformed ${what} skipped (read as ${log.format})`);
  }
  if (log.firstTimestamp === undefined) {
    printErr(
      log.format === 'kubectl'
        ? `error: ${options.log}: no line starts with an RFC 3339 timestamp (save the log with \`kubectl logs --timestamps\`)`
        : `error: ${options.log}: no usable ${log.format} line (read as ${log.format}; --format names the format)`,
    );
    return ExitCode.Failed;
  }
  if (log.unstamped > 0) printErr(`warning: ${log.unstamped} line(s) before the first timestamp skipped`);
  if (log.invalidAgentRecords > 0)
    printErr(`warning: ${log.invalidAgentRecords} malformed agent record(s) skipped`);
  const findings = checkLog(ruleList, log.lines, log.firstTimestamp);
  if (options.output === 'json') for (const f of findings) printOut(JSON.stringify(f));
  else if (options.output === 'yaml') printData(findings, 'yaml');
  else {
    for (const f of findings) printOut(textLine(f));
    printErr(`${findings.length} finding(s); ${ruleList.length} rule(s) over ${log.lines.length} line(s)`);
  }
  return findings.length > 0 ? ExitCode.Findings : ExitCode.Ok;
}
