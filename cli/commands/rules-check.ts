/**
 * The implementation of `trainkeeper rules check` (registered in cli/commands/rules.ts, which loads this
 * module only when the command runs, so other commands do not load the manifest parser and the rule engine).
 */
import { basename } from 'node:path';
import type { RuleFinding } from '../../core/observations.ts';
import { parseJobManifest } from '../../core/spec/parse.ts';
import { type CompiledRules, compileRules, evaluateLines, initialRuleState } from '../../rules/engine.ts';
import { KubectlLogParser, type NumberedLogLine } from '../../rules/kubectl-log.ts';
import { formatOfBytes, type LogFormat, type ParsedLog, parseLog } from '../../rules/log-formats.ts';
import { effectiveRules } from '../../rules/presets/index.ts';
import type { RuleState } from '../../rules/state.ts';
import {
  ExitCode,
  type OutputFormat,
  printData,
  printErr,
  printIssues,
  printOut,
  readInput,
  readInputChunks,
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

/**
 * Runs rules over a log's lines handed over in pieces of any size (`add`), in `CHUNK`-line engine calls,
 * keeping only the findings: a caller that parses a file a block at a time holds one block's lines. The
 * findings do not depend on how the lines were split into `add` calls.
 */
export class LogCheck {
  private readonly compiled: CompiledRules;
  private state: RuleState;
  private pending: NumberedLogLine[] = [];
  private readonly found: CheckedFinding[] = [];

  /** `start`: the job's start (rule timers start there), epoch ms. @throws RuleCompileError */
  constructor(rules: Parameters<typeof compileRules>[0], start: number) {
    this.compiled = compileRules(rules);
    this.state = initialRuleState(this.compiled, 0, start);
  }

  /** Evaluates `lines` (the next lines of the log, in file order) as far as whole chunks go. */
  add(lines: readonly NumberedLogLine[]): void {
    let i = 0;
    if (this.pending.length > 0) {
      while (i < lines.length && this.pending.length < CHUNK)
        this.pending.push(lines[i++] as NumberedLogLine);
      if (this.pending.length < CHUNK) return;
      this.evaluate(this.pending);
      this.pending = [];
    }
    for (; i + CHUNK <= lines.length; i += CHUNK) this.evaluate(lines.slice(i, i + CHUNK));
    if (i < lines.length) this.pending = lines.slice(i);
  }

  /** Evaluates what is left; the findings in file order. */
  finish(): CheckedFinding[] {
    if (this.pending.length > 0) this.evaluate(this.pending);
    this.pending = [];
    return this.found.sort((a, b) => (a.lineNumber ?? 0) - (b.lineNumber ?? 0));
  }

  private evaluate(chunk: readonly NumberedLogLine[]): void {
    const now = chunk.reduce((t, l) => Math.max(t, l.timestamp), this.state.clock);
    const result = evaluateLines(this.compiled, this.state, chunk, now);
    this.state = result.state;
    for (const f of result.findings) {
      this.found.push({
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
}

/** Runs rules over a parsed log; findings in file order. */
export function checkLog(
  rules: Parameters<typeof compileRules>[0],
  lines: readonly NumberedLogLine[],
  start: number,
): CheckedFinding[] {
  const check = new LogCheck(rules, start);
  check.add(lines);
  return check.finish();
}

/** What `rules check` learnt of a log file: its parse less the lines (counted), and the findings. */
interface CheckedFile {
  log: Omit<ParsedLog, 'lines'>;
  lineCount: number;
  findings: CheckedFinding[];
}

/**
 * Reads, parses and checks `file`. A kubectl log (named by `format` or by its first bytes) is parsed and
 * evaluated a block at a time as it is read (rules/kubectl-log.ts `KubectlLogParser`), so memory does not
 * grow with the file; the JSON formats are read whole (a `cloudwatch-json` file is one JSON document, and
 * both order their lines by time over the whole file). The result is the same either way.
 */
async function checkFile(
  rules: Parameters<typeof compileRules>[0],
  file: string,
  source: string,
  format: LogFormat | undefined,
): Promise<CheckedFile> {
  let parser: KubectlLogParser | undefined;
  let check: LogCheck | undefined;
  let lineCount = 0;
  const feed = (lines: NumberedLogLine[]): void => {
    if (lines.length === 0) return;
    lineCount += lines.length;
    // the parser gives no line before the first timestamp, so the start is known by now
    check ??= new LogCheck(rules, parser?.firstTimestamp as number);
    check.add(lines);
  };
  let head: Uint8Array[] = []; // copies of the blocks read before the format was known
  let kind: LogFormat | 'text' | undefined = format;
  for await (const block of readInputChunks(file)) {
    if (parser) {
      feed(parser.push(block));
      continue;
    }
    head.push(Buffer.from(block));
    kind ??= formatOfBytes(block);
    if (kind === 'kubectl') {
      parser = new KubectlLogParser(source);
      for (const b of head) feed(parser.push(b));
      head = [];
    }
  }
  if (parser === undefined && (kind ?? 'kubectl') === 'kubectl') parser = new KubectlLogParser(source);
  if (parser) {
    for (const b of head) feed(parser.push(b));
    feed(parser.end());
    return {
      log: {
        format: 'kubectl',
        firstTimestamp: parser.firstTimestamp,
        unstamped: parser.unstamped,
        agentRecords: parser.agentRecords,
        invalidAgentRecords: parser.invalidAgentRecords,
        malformed: 0,
        skipped: [],
      },
      lineCount,
      findings: check?.finish() ?? [],
    };
  }
  const { lines, ...log } = parseLog(Buffer.concat(head), source, format);
  const usable = log.error === undefined && log.firstTimestamp !== undefined;
  return {
    log,
    lineCount: lines.length,
    findings: usable ? checkLog(rules, lines, log.firstTimestamp as number) : [],
  };
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
  const { log, lineCount, findings } = await checkFile(ruleList, options.log, source, options.format);
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
  if (options.output === 'json') for (const f of findings) printOut(JSON.stringify(f));
  else if (options.output === 'yaml') printData(findings, 'yaml');
  else {
    for (const f of findings) printOut(textLine(f));
    printErr(`${findings.length} finding(s); ${ruleList.length} rule(s) over ${lineCount} line(s)`);
  }
  return findings.length > 0 ? ExitCode.Findings : ExitCode.Ok;
}
