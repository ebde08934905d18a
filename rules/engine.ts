/**
 * The log-rule engine: HyperPod's log-monitoring semantics (hyperpod-spec §3.2, the agent's
 * `LogEvaluator`) over all ranks' lines of a job, as pure functions on plain-JSON state.
 *
 * Per line and rule, in HyperPod's order: a `logPattern` match (anchored, `re.match`) remembers the line
 * and its time, and with `faultOnMatch` is FAULTED; then a `stopPattern` match deactivates the rule for
 * the rest of the generation (HEALTHY); a match with a capture group 1 and `metricThreshold` + `operator`
 * is a data point — comparison true ⇒ SLOW point (consecutive counter +1, capped), false ⇒ counter reset;
 * counter ≥ `metricEvaluationDataPoints` ⇒ SLOW, else HEALTHY; a match without group 1 or without
 * threshold/operator ⇒ HEALTHY; a group 1 that is not a number (Python `float()` would raise) leaves the
 * verdict as it was. Time checks: no match `expectedStartCutOffInSeconds` after the generation started ⇒
 * HANGING; after a match, no next match within `expectedRecurringFrequencyInSeconds` ⇒ HANGING (both
 * strictly greater, as HyperPod's `>`).
 *
 * Beyond HyperPod:
 * - Every rank's lines are read unless `ranks` narrows the rule (a line of unknown rank is then skipped).
 * - Metric data points and FAULTED/SLOW verdicts are per stream (one straggling rank is SLOW).
 * - Time checks are job-wide by default (a match on any monitored stream is progress; a hang finding has
 *   stream `job`) or per stream with `scope: 'stream'` (every stream the rule has seen keeps its own
 *   timers, started at the generation start; one silent rank is HANGING for that stream).
 * - The stop pattern stops the whole rule with scope `job`, and only its stream with scope `stream`.
 * - Findings are edge-triggered: one finding per transition of a (rule, stream) — or (rule, job) for
 *   job-wide hangs — into a fault verdict. A rule that stays SLOW over many lines reports once; it reports
 *   again only after it left that verdict (a normal reading, a new match after a hang) and re-entered it.
 *
 * Time (the exact rule):
 * - A batch's lines are evaluated in timestamp order (a stable sort: equal timestamps keep input order),
 *   so lines out of order across streams do not fake a gap. A line stamped before the generation's
 *   `startedAt` is ignored (late output of the previous generation).
 * - A match at time t first checks the deadline of its scope at t: if the last match (or the start) is
 *   more than the allowed gap before t, the hang that happened in between is reported (at the deadline),
 *   then the match clears it. So a batch that covers a silence still reports it.
 * - After the batch, time is T = max(previous clock, `now`, latest line timestamp); every deadline
 *   before T that has passed is reported. `tickRules` does the same with T = max(clock, now). The
 *   clock never moves backwards.
 * - A finding's `at` is the line's time for FAULTED/SLOW, and the deadline that passed for HANGING.
 */
import { ValidationError } from '../core/errors.ts';
import type { FaultVerdict, RuleFinding } from '../core/observations.ts';
import { logRuleReason, ruleReasonNames } from '../core/reasons.ts';
import type { LogRule, MetricOperator } from '../core/spec/types.ts';
import { LiteralSet } from './literal-set.ts';
import { compilePattern, type PatternMatcher, PatternSyntaxError } from './matcher.ts';
import {
  MAX_TEXT,
  RULE_STATE_VERSION,
  type RuleSlot,
  type RuleState,
  RuleStateSchema,
  type StreamSlot,
  type TimerSlot,
} from './state.ts';
import type { LogLine, Verdict } from './types.ts';

/** A rule pattern that cannot be compiled; names the rule and the field. */
export class RuleCompileError extends ValidationError {
  constructor(
    readonly rule: string,
    readonly field: 'logPattern' | 'stopPattern',
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      `rule ${JSON.stringify(rule)}: ${field}: ${reason}`,
      [{ path: `${rule}.${field}`, message: reason }],
      options,
    );
  }
}

/** One rule, compiled. */
export interface CompiledRule {
  readonly rule: LogRule;
  readonly name: string;
  /**
   * The rule's name in its fault reasons (`LogFault_<reasonName>`): the name itself when it is made of
   * letters, digits, `_`, `.` and `-`, else a CamelCase form unique among the job's rules
   * (core/reasons.ts `ruleReasonNames`).
   */
  readonly reasonName: string;
  readonly match: PatternMatcher;
  readonly stop: PatternMatcher | undefined;
  /** The comparison that makes a data point SLOW, when the rule has threshold + operator. */
  readonly isSlowPoint: ((value: number) => boolean) | undefined;
  readonly dataPoints: number;
  readonly ranks: ReadonlySet<number> | undefined;
  readonly cutoffMs: number | undefined;
  readonly recurringMs: number | undefined;
  readonly perStream: boolean;
  /** The rule has a time check (start cutoff or recurring frequency). */
  readonly timed: boolean;
  /** `rule.faultOnMatch`, read once per line and rule. */
  readonly faultOnMatch: boolean;
  /**
   * An event rule (faultOnMatch, no time checks) matches rarely by nature: a line without any of its
   * literals (the set's *marked* literals) skips all gated event rules at once.
   */
  readonly event: boolean;
  /**
   * The prefilters of the match/stop patterns as ids in `CompiledRules.literals` (undefined = the pattern
   * has no prefilter). Every rule's literals, event rule or not, are found by the one scan per line, so
   * a rule asks "any of my literals?" with array reads instead of one `includes` per literal (measured:
   * the progress and metric rules' own substring searches cost as much as the whole scan).
   */
  readonly matchGate: Int32Array | undefined;
  readonly stopGate: Int32Array | undefined;
}

/**
 * Rules ready to evaluate: compile once per job spec. Holds `RegExp`s, so it is not stored; the state
 * (`RuleState`) is.
 */
export interface CompiledRules {
  readonly rules: readonly CompiledRule[];
  /**
   * Every distinct prefilter literal of every rule, found with one scan per line; the event rules'
   * literals are marked (a line without any skips the gated event rules).
   */
  readonly literals: LiteralSet;
  /** Indexes of the rules a line without any event literal can still concern (all but gated event rules). */
  readonly ungated: readonly number[];
}

const COMPARE: Record<MetricOperator, (threshold: number) => (value: number) => boolean> = {
  gt: (t) => (v) => v > t,
  gteq: (t) => (v) => v >= t,
  lt: (t) => (v) => v < t,
  lteq: (t) => (v) => v <= t,
  eq: (t) => (v) => v === t,
};

/**
 * Compiles rules for `evaluateLines`/`tickRules`. Rule names must be unique (they key the state).
 * @throws RuleCompileError naming the rule and field of the first bad pattern.
 */
export function compileRules(rules: readonly LogRule[]): CompiledRules {
  const literals: string[] = [];
  const gateIds = (m: PatternMatcher | undefined): Int32Array | undefined => {
    if (m?.prefilter === undefined) return undefined;
    const ids = m.prefilter.map((lit) => {
      const at = literals.indexOf(lit);
      return at >= 0 ? at : literals.push(lit) - 1;
    });
    return new Int32Array(ids);
  };
  const compileField = (rule: LogRule, field: 'logPattern' | 'stopPattern', pattern: string) => {
    try {
      return compilePattern(pattern);
    } catch (err) {
      if (err instanceof PatternSyntaxError)
        throw new RuleCompileError(rule.name, field, err.reason, { cause: err });
      throw err;
    }
  };
  const seen = new Set<string>();
  const reasonNames = ruleReasonNames(rules.map((r) => r.name));
  const compiled = rules.map((rule): CompiledRule => {
    if (seen.has(rule.name)) {
      throw new RuleCompileError(rule.name, 'logPattern', 'duplicate rule name (names key the rule state)');
    }
    seen.add(rule.name);
    const match = compileField(rule, 'logPattern', rule.logPattern);
    const stop =
      rule.stopPattern === undefined ? undefined : compileField(rule, 'stopPattern', rule.stopPattern);
    const hasMetric = rule.metricThreshold !== undefined && rule.operator !== undefined;
    const event =
      rule.faultOnMatch &&
      rule.expectedStartCutOffInSeconds === undefined &&
      rule.expectedRecurringFrequencyInSeconds === undefined;
    return {
      rule,
      name: rule.name,
      reasonName: reasonNames.get(rule.name) ?? rule.name,
      match,
      stop,
      isSlowPoint:
        hasMetric && rule.operator && rule.metricThreshold !== undefined
          ? COMPARE[rule.operator](rule.metricThreshold)
          : undefined,
      dataPoints: Math.max(1, rule.metricEvaluationDataPoints ?? 1),
      ranks: rule.ranks === undefined ? undefined : new Set(rule.ranks),
      cutoffMs:
        rule.expectedStartCutOffInSeconds === undefined
          ? undefined
          : rule.expectedStartCutOffInSeconds * 1000,
      recurringMs:
        rule.expectedRecurringFrequencyInSeconds === undefined
          ? undefined
          : rule.expectedRecurringFrequencyInSeconds * 1000,
      perStream: rule.scope === 'stream',
      timed:
        rule.expectedStartCutOffInSeconds !== undefined ||
        rule.expectedRecurringFrequencyInSeconds !== undefined,
      faultOnMatch: rule.faultOnMatch,
      event,
      matchGate: gateIds(match),
      stopGate: gateIds(stop),
    };
  });
  const marked = new Uint8Array(literals.length);
  for (const r of compiled) {
    if (!r.event) continue;
    for (const id of r.matchGate ?? []) marked[id] = 1;
    for (const id of r.stopGate ?? []) marked[id] = 1;
  }
  const ungated = compiled.flatMap((r, i) =>
    r.event && r.matchGate !== undefined && r.stop === undefined ? [] : [i],
  );
  return { rules: compiled, literals: new LiteralSet(literals, (id) => marked[id] === 1), ungated };
}

const freshTimer = (): TimerSlot => ({ verdict: 'WAITING' });

/**
 * Sets `record[key]` as an own property whatever the key: rule and stream names are user text, and a
 * plain assignment of `__proto__` would set the prototype instead.
 */
function setOwn<T>(record: Record<string, T>, key: string, value: T): void {
  if (key === '__proto__')
    Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
}

/** `record[key]` when it is an own property (a rule named `constructor` must not read Object's). */
const getOwn = <T>(record: Record<string, T>, key: string): T | undefined =>
  Object.hasOwn(record, key) ? record[key] : undefined;
const freshSlot = (): RuleSlot => ({ job: freshTimer(), streams: {} });

/** A fresh state for `generation`, whose timers start at `startedAt` (epoch ms). */
export function initialRuleState(c: CompiledRules, generation: number, startedAt: number): RuleState {
  const rules: Record<string, RuleSlot> = {};
  for (const r of c.rules) setOwn(rules, r.name, freshSlot());
  return { v: RULE_STATE_VERSION, generation, startedAt, clock: startedAt, rules };
}

/**
 * State for a new restart generation: every timer, counter, verdict and stop restarts at `startedAt`
 * (so workers that are restarting are not HANGING before `startedAt` + cutoff), and the clock carries over
 * (it never moves backwards). `startedAt` may lie ahead of the clock (timers not started yet).
 */
export function restartRuleState(
  c: CompiledRules,
  state: RuleState,
  generation: number,
  startedAt: number,
): RuleState {
  const fresh = initialRuleState(c, generation, startedAt);
  fresh.clock = Math.max(state.clock, startedAt);
  return fresh;
}

/** The generation a stored state belongs to, or undefined when it is not a valid state. */
export function ruleStateGeneration(state: unknown): number | undefined {
  const parsed = RuleStateSchema.safeParse(state);
  return parsed.success ? parsed.data.generation : undefined;
}

/**
 * The state to evaluate with: the stored one when it parses and belongs to `generation`, else a fresh
 * one started at `startedAt`. Handlers call this with `job.ruleState`, `job.generation`, `job.runningSince`.
 */
export function loadRuleState(
  c: CompiledRules,
  stored: unknown,
  generation: number,
  startedAt: number,
): RuleState {
  const parsed = RuleStateSchema.safeParse(stored);
  if (parsed.success && parsed.data.generation === generation) return parsed.data;
  return initialRuleState(c, generation, startedAt);
}

/** A captured metric: every `logPattern` match whose group 1 is a number. */
export interface RuleValue {
  rule: string;
  value: number;
  /** The line's time. */
  at: number;
  rank?: number;
}

/** The strings `Number()` and Python's `float()` read alike (see `isSimpleFloat`). */
export const SIMPLE_FLOAT = /^\d+(?:\.\d*)?(?:[eE][+-]?\d+)?$/;
/**
 * `SIMPLE_FLOAT` without a regex call (it ran on every captured metric): digits, optionally `.` and
 * digits, optionally `e`/`E`, a sign and digits (`12`, `3.5`, `7.`, `2.5E+00`). Accepts exactly the
 * strings `SIMPLE_FLOAT` accepts.
 */
export function isSimpleFloat(text: string): boolean {
  const n = text.length;
  let i = 0;
  let c = n > 0 ? text.charCodeAt(0) : -1;
  while (c >= 48 && c <= 57) c = ++i < n ? text.charCodeAt(i) : -1;
  if (i === 0) return false;
  if (c === 46) {
    // '.' and optional digits
    c = ++i < n ? text.charCodeAt(i) : -1;
    while (c >= 48 && c <= 57) c = ++i < n ? text.charCodeAt(i) : -1;
  }
  if (c === 101 || c === 69) {
    // 'e' / 'E', an optional sign, then at least one digit
    c = ++i < n ? text.charCodeAt(i) : -1;
    if (c === 43 || c === 45) c = ++i < n ? text.charCodeAt(i) : -1;
    const digits = i;
    while (c >= 48 && c <= 57) c = ++i < n ? text.charCodeAt(i) : -1;
    if (i === digits) return false;
  }
  return i === n;
}

const PY_FLOAT =
  /^[+-]?(?:(?:\d(?:_?\d)*)?\.?\d(?:_?\d)*(?:[eE][+-]?\d(?:_?\d)*)?|\d(?:_?\d)*\.|(?:inf|infinity|nan))$/i;

/** Python `float(text)`, or undefined where Python would raise. */
export function parsePythonFloat(text: string): number | undefined {
  if (isSimpleFloat(text)) return Number(text);
  const s = text.trim();
  if (!PY_FLOAT.test(s)) return undefined;
  const lower = s.toLowerCase().replace(/^[+]/, '');
  if (lower.endsWith('nan')) return Number.NaN;
  if (lower.endsWith('inf') || lower.endsWith('infinity'))
    return lower.startsWith('-') ? -Infinity : Infinity;
  return Number(s.replace(/_/g, ''));
}

const clip = (text: string): string => (text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) : text);

/**
 * A deep copy of one rule slot. The stored shape is flat objects two levels deep (slot → job/streams →
 * timer fields), so spreads copy it exactly — the same own keys in the same order, absent optional fields
 * stay absent — at a fraction of `structuredClone`'s cost (it ran once per rule per batch).
 */
function copySlot(slot: RuleSlot): RuleSlot {
  const streams: Record<string, StreamSlot> = {};
  for (const key of Object.keys(slot.streams)) {
    // a stream named `__proto__` must stay an own key (plain assignment would set the prototype)
    setOwn(streams, key, { ...(slot.streams[key] as StreamSlot) });
  }
  return { ...slot, job: { ...slot.job }, streams };
}

/** Copies the state (the functions are pure) keeping only slots of rules that still exist. */
function cloneFor(c: CompiledRules, state: RuleState): RuleState {
  const rules: Record<string, RuleSlot> = {};
  for (const r of c.rules) {
    const slot = getOwn(state.rules, r.name);
    setOwn(rules, r.name, slot ? copySlot(slot) : freshSlot());
  }
  return { ...state, rules };
}

/** Mutable evaluation context of one call. */
interface Run {
  state: RuleState;
  findings: RuleFinding[];
}

function report(
  run: Run,
  r: CompiledRule,
  verdict: FaultVerdict,
  stream: string,
  at: number,
  rank: number | undefined,
  text: string | undefined,
  value?: number,
): void {
  const finding: RuleFinding = {
    rule: r.name,
    verdict,
    reason: logRuleReason(verdict, r.reasonName),
    stream,
    at,
    generation: run.state.generation,
  };
  if (rank !== undefined) finding.rank = rank;
  if (text !== undefined) finding.text = text;
  if (value !== undefined) finding.value = value;
  run.findings.push(finding);
}

/** Moves a slot to `verdict`; reports when that is a transition into a fault verdict. */
function transition(
  run: Run,
  r: CompiledRule,
  slot: TimerSlot,
  verdict: Verdict,
  stream: string,
  at: number,
  rank: number | undefined,
  text: string | undefined,
  value?: number,
): void {
  if (slot.verdict === verdict) return;
  slot.verdict = verdict;
  if (verdict === 'FAULTED' || verdict === 'SLOW' || verdict === 'HANGING') {
    report(run, r, verdict, stream, at, rank, text, value);
  }
}

/** The deadline of a timer scope, if the rule has one that applies. */
function deadlineOf(r: CompiledRule, timer: TimerSlot, startedAt: number): number | undefined {
  if (timer.lastMatchAt === undefined) return r.cutoffMs === undefined ? undefined : startedAt + r.cutoffMs;
  return r.recurringMs === undefined ? undefined : timer.lastMatchAt + r.recurringMs;
}

/** Reports HANGING for a scope whose deadline is before `t`. */
function checkTimer(
  run: Run,
  r: CompiledRule,
  timer: TimerSlot,
  t: number,
  stream: string,
  rank: number | undefined,
): void {
  if (timer.verdict === 'HANGING') return;
  const deadline = deadlineOf(r, timer, run.state.startedAt);
  if (deadline !== undefined && t > deadline)
    transition(run, r, timer, 'HANGING', stream, deadline, rank, timer.lastText);
}

function checkAllTimers(run: Run, c: CompiledRules, t: number): void {
  for (const r of c.rules) {
    if (r.cutoffMs === undefined && r.recurringMs === undefined) continue;
    const slot = run.state.rules[r.name] as RuleSlot;
    if (slot.stopped) continue;
    if (!r.perStream) {
      checkTimer(run, r, slot.job, t, 'job', undefined);
      continue;
    }
    for (const [stream, s] of Object.entries(slot.streams)) {
      if (!s.stopped) checkTimer(run, r, s, t, stream, s.rank);
    }
  }
}

const freshStream = (rank: number | undefined): StreamSlot =>
  rank === undefined ? { verdict: 'WAITING', slow: 0 } : { verdict: 'WAITING', slow: 0, rank };

function streamSlot(slot: RuleSlot, line: LogLine): StreamSlot {
  let s = slot.streams[line.stream];
  if (!s) {
    s = freshStream(line.rank);
    slot.streams[line.stream] = s;
  } else if (line.rank !== undefined && s.rank !== line.rank) {
    s.rank = line.rank;
  }
  return s;
}

const sortedByTime = (lines: readonly LogLine[]): readonly LogLine[] => {
  for (let i = 1; i < lines.length; i++) {
    if ((lines[i] as LogLine).timestamp < (lines[i - 1] as LogLine).timestamp) {
      return [...lines].sort((a, b) => a.timestamp - b.timestamp);
    }
  }
  return lines;
};

/** Whether the last scanned line passes a pattern's prefilter (no prefilter: every line does). */
const passes = (gate: Int32Array | undefined, literals: LiteralSet): boolean =>
  gate === undefined || literals.hasAny(gate);

/**
 * Evaluates a batch of lines (any order, any streams) at time `now` (epoch ms). Returns the new state
 * (the input is not modified), the findings (transitions into FAULTED/HANGING/SLOW, ordered by `at`),
 * and the captured metric values (so the caller can take training progress from a designated rule): every
 * rule's, or with `valuesOf` only that rule's (none when it names no rule).
 */
export function evaluateLines(
  c: CompiledRules,
  state: RuleState,
  lines: readonly LogLine[],
  now: number,
  opts: { valuesOf?: string | null } = {},
): { state: RuleState; findings: RuleFinding[]; values: RuleValue[] } {
  const run: Run = { state: cloneFor(c, state), findings: [] };
  const values: RuleValue[] = [];
  const rules = c.rules;
  const keepValues = rules.map((r) => opts.valuesOf === undefined || r.name === opts.valuesOf);
  const slots = rules.map((r) => run.state.rules[r.name] as RuleSlot);
  const literals = c.literals;
  const startedAt = run.state.startedAt;
  const ruleCount = rules.length;
  const ungated = c.ungated;
  const noneGated = ungated.length === ruleCount;
  let latest = run.state.clock;
  for (const line of sortedByTime(lines)) {
    const t = line.timestamp;
    if (t < startedAt) continue;
    if (t > latest) latest = t;
    const text = line.text;
    const rank = line.rank;
    const anyLiteral = literals.scan(text); // any event-rule (marked) literal
    // a line without any gate literal skips the gated event rules (most lines: faults are rare)
    const all = anyLiteral || noneGated;
    const count = all ? ruleCount : ungated.length;
    for (let k = 0; k < count; k++) {
      const i = all ? k : (ungated[k] as number);
      const slot = slots[i] as RuleSlot;
      if (slot.stopped) continue;
      const r = rules[i] as CompiledRule;
      if (r.ranks !== undefined && (rank === undefined || !r.ranks.has(rank))) continue;
      const perStream = r.perStream;
      let stream: StreamSlot | undefined;
      if (perStream) {
        stream = streamSlot(slot, line);
        if (stream.stopped) continue;
      }
      const group = passes(r.matchGate, literals) ? r.match.matchUnchecked(text) : null;
      const matched = group !== null;
      // group 1 as Python's float(), parsed once per match (undefined: no group 1, or float() raises)
      let value: number | undefined;
      if (matched) {
        const timer: TimerSlot = stream ?? slot.job;
        if (r.timed)
          checkTimer(run, r, timer, t, perStream ? line.stream : 'job', perStream ? rank : undefined);
        timer.lastMatchAt = timer.lastMatchAt === undefined ? t : Math.max(timer.lastMatchAt, t);
        timer.lastText = clip(text);
        if (!perStream && (slot.job.verdict === 'WAITING' || slot.job.verdict === 'HANGING')) {
          slot.job.verdict = 'HEALTHY';
        }
        if (perStream && stream && stream.verdict === 'HANGING') stream.verdict = 'HEALTHY';
        if (typeof group === 'string' && r.match.groups > 0) {
          value = parsePythonFloat(group);
          if (value !== undefined && keepValues[i] === true) {
            values.push(
              rank === undefined ? { rule: r.name, value, at: t } : { rule: r.name, value, at: t, rank },
            );
          }
        }
        if (r.faultOnMatch) {
          stream ??= streamSlot(slot, line);
          transition(run, r, stream, 'FAULTED', line.stream, t, rank, clip(text));
          continue;
        }
      }
      if (r.stop) {
        const stopped = passes(r.stopGate, literals) && r.stop.matchUnchecked(text) !== null;
        if (stopped) {
          if (perStream && stream) {
            stream.stopped = true;
            stream.verdict = 'HEALTHY';
          } else {
            slot.stopped = true;
            slot.job.verdict = 'HEALTHY';
          }
          continue;
        }
      }
      if (!matched) continue;
      if (r.isSlowPoint === undefined || r.match.groups === 0) {
        if (stream) stream.verdict = 'HEALTHY';
        else {
          const existing = slot.streams[line.stream];
          if (existing) existing.verdict = 'HEALTHY';
        }
        continue;
      }
      // group 1 did not take part (Python's float(None) raises) or float() raises: the line is skipped
      if (value === undefined) continue;
      stream ??= streamSlot(slot, line);
      if (r.isSlowPoint(value)) {
        if (stream.slow < r.dataPoints) stream.slow++;
      } else {
        stream.slow = 0;
      }
      transition(
        run,
        r,
        stream,
        stream.slow >= r.dataPoints ? 'SLOW' : 'HEALTHY',
        line.stream,
        t,
        rank,
        clip(text),
        value,
      );
    }
  }
  const clock = Math.max(latest, now);
  run.state.clock = clock;
  checkAllTimers(run, c, clock);
  forgetStreamsAtRest(c, run.state);
  run.findings.sort((a, b) => a.at - b.at);
  return { state: run.state, findings: run.findings, values };
}

/**
 * Drops the per-stream entries of job-scope rules that hold nothing a fresh entry would not: verdict
 * WAITING or HEALTHY, no SLOW streak under way. Such a rule keeps a stream entry only for its metric streak
 * and its FAULTED/SLOW verdict (a job-scope rule has no per-stream timer), and a fresh entry (WAITING, no
 * streak) behaves the same on every path: a HEALTHY point leaves it HEALTHY without a report, a SLOW one
 * starts a streak, a fault match reports. So a healthy job keeps no per-stream state at all: its rule state
 * stays the size of its rules, not of its streams (16,384 pods × 8 ranks would otherwise be megabytes,
 * rewritten as the entries come and go). Stream-scope rules keep every entry: their timers are per stream.
 */
function forgetStreamsAtRest(c: CompiledRules, state: RuleState): void {
  for (const r of c.rules) {
    if (r.perStream) continue;
    const streams = (state.rules[r.name] as RuleSlot).streams;
    for (const key of Object.keys(streams)) {
      const s = streams[key] as StreamSlot;
      if ((s.verdict === 'HEALTHY' || s.verdict === 'WAITING') && s.slow === 0 && s.stopped === undefined)
        delete streams[key];
    }
  }
}

/**
 * Time-based checks only (start cutoff, recurring frequency) at T = max(clock, `now`): the sweep calls it
 * for silent jobs, the CLI as its file's time advances.
 */
export function tickRules(
  c: CompiledRules,
  state: RuleState,
  now: number,
): { state: RuleState; findings: RuleFinding[] } {
  const run: Run = { state: cloneFor(c, state), findings: [] };
  const clock = Math.max(run.state.clock, now);
  run.state.clock = clock;
  checkAllTimers(run, c, clock);
  run.findings.sort((a, b) => a.at - b.at);
  return { state: run.state, findings: run.findings };
}

/**
 * The earliest pending deadline (a hang fires at any time strictly after it), or undefined when no rule
 * has one. Lets the sweep schedule `nextCheckAt` instead of polling.
 */
export function nextRuleDeadline(c: CompiledRules, state: RuleState): number | undefined {
  let next: number | undefined;
  const consider = (r: CompiledRule, timer: TimerSlot) => {
    if (timer.verdict === 'HANGING') return;
    const d = deadlineOf(r, timer, state.startedAt);
    if (d !== undefined && (next === undefined || d < next)) next = d;
  };
  for (const r of c.rules) {
    if (r.cutoffMs === undefined && r.recurringMs === undefined) continue;
    const slot = getOwn(state.rules, r.name);
    if (!slot) {
      if (r.cutoffMs !== undefined && !r.perStream) consider(r, freshTimer());
      continue;
    }
    if (slot.stopped) continue;
    if (!r.perStream) consider(r, slot.job);
    else for (const s of Object.values(slot.streams)) if (!s.stopped) consider(r, s);
  }
  return next;
}
