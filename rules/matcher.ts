/**
 * Compiles one rule pattern (`logPattern` / `stopPattern`, Python `re` syntax) into a matcher with Python
 * `re.match` semantics. Patterns in the RE2 dialect run in linear time (below); patterns with lookaround
 * or backreferences, accepted only when core/spec/pattern.ts finds them backtrack-safe, run on V8's
 * backtracking engine over at most `MAX_BACKTRACKING_LINE` characters of a line (`BacktrackingMatcher`).
 *
 * How a pattern is run, cheapest first:
 * - Translation: Python-only spellings become JavaScript (`(?P<name>` → `(?<name>`, `{,m}` → `{0,m}`,
 *   `\A` → `^`, leading `(?s)`/`(?m)` dropped: lines never contain `\n`, so `.` with JavaScript's
 *   dotAll flag is Python's `.`).
 * - Strategy (all give exactly the captures of `re.match`):
 *   - `search`: the pattern starts with a lazy `.*?`, or with a greedy `.*` and has no capture group:
 *     the leading `.*` is dropped and the rest is searched unanchored (V8 finds literal prefixes fast).
 *   - `last-occurrence`: greedy `.*X` where `X` has capture groups and starts with a literal `L`: greedy
 *     `.*` makes `re.match` take the LAST position where `X` matches, so `X` is tried (sticky) at each
 *     occurrence of `L` from the last one backwards; the first success is Python's match.
 *   - `anchored`: anything else runs as `^(?:pattern)`.
 *   A trailing top-level `.*` is dropped too (it only extends group 0, which rules never read).
 * - Literal prefilter: `prefilter` is a set of substrings of which every match contains at least one
 *   (the longest required literal run, or one literal per branch of a required alternation such as
 *   `(?:NCCL error|ncclSystemError)`); a line containing none of them is not matched at all.
 * - Engine: V8 when its linear engine can run the pattern (rules/linear-regex.ts makes V8 fall back to it
 *   on excessive backtracking); otherwise (case-insensitive `(?i)`, counted repetition over V8's
 *   replication limit, RE2-only syntax) the pure-JS RE2 port `re2js`, which is always linear.
 *
 * Invariant: `match(text)` equals Python's `re.match(pattern, text)` (matched or not, and group 1) for
 * every `text` without `\n`; tests compare against Python over a table of patterns and lines. Known
 * difference: `\d`, `\w`, `\s`, `\b` are ASCII here and Unicode in Python.
 */
import { RE2JS } from 're2js';
import { backtrackingPattern, MAX_BACKTRACKING_LINE, patternError } from '../core/spec/pattern.ts';
import { isLinearCapable } from './linear-regex.ts';

/**
 * The result of one match: `null` = no match; `undefined` = matched without a group 1 (or group 1 did
 * not take part); a string = group 1's text. Allocation-free on the hot path.
 */
export type MatchGroup = string | undefined | null;

/** A compiled pattern. */
export interface PatternMatcher {
  /** The pattern as the user wrote it. */
  readonly pattern: string;
  /** `backtracking`: a lookaround/backreference pattern (core/spec/pattern.ts), on a line prefix. */
  readonly engine: 'v8' | 're2' | 'backtracking';
  readonly strategy: 'anchored' | 'search' | 'last-occurrence';
  /** Substrings of which every match contains at least one; undefined when none could be extracted. */
  readonly prefilter: readonly string[] | undefined;
  /** The prefilter when it is a single literal. */
  readonly literal: string | undefined;
  /** Number of capture groups in the pattern. */
  readonly groups: number;
  /**
   * `matchUnchecked` itself starts with a forward search for the prefilter's single literal (the
   * `last-occurrence` strategy whose prefix is that literal), so a caller gains nothing by testing the
   * prefilter first: a line without the literal is rejected by that one search.
   */
  readonly scansPrefilter: boolean;
  /** `re.match` of the whole pattern, prefilter included. */
  match(text: string): MatchGroup;
  /** As `match`, for a caller that has already checked `prefilter`. */
  matchUnchecked(text: string): MatchGroup;
}

/** A pattern that cannot be compiled: outside the RE2 dialect, or not a valid regular expression. */
export class PatternSyntaxError extends Error {
  constructor(
    readonly pattern: string,
    readonly reason: string,
  ) {
    super(`invalid pattern ${JSON.stringify(pattern)}: ${reason}`);
    this.name = 'PatternSyntaxError';
  }
}

/** One top-level element of a scanned pattern, rendered for both engines. */
interface Item {
  kind: 'lit' | 'dot' | 'other';
  js: string;
  re2: string;
  /** The character, for `lit`. */
  ch?: string;
  /** For a plain or non-capturing group: its content, as written. */
  inner?: string;
  min: number;
  max: number;
  lazy: boolean;
  /** The quantifier as written (rendered the same for both engines). */
  quant: string;
}

interface Scan {
  items: Item[];
  /** A `|` at depth 0. */
  topAlternation: boolean;
  captures: number;
  /** Something only re2js runs (inline flags other than a leading `(?s)`/`(?m)`, RE2-only escapes). */
  needsRe2: boolean;
  caseless: boolean;
  /** Leading global flags, as written (`(?ims)`), kept for the RE2 rendering. */
  leadingFlags: string;
}

const PUNCT_ESCAPE = /[^A-Za-z0-9]/;
const CONTROL_ESCAPES: Record<string, string> = { t: '\t', n: '\n', r: '\r', f: '\f', v: '\v' };

/** Scans a Python/RE2 pattern into top-level items; nested groups are kept whole. */
function scanPattern(pattern: string): Scan {
  let i = 0;
  const scan: Scan = {
    items: [],
    topAlternation: false,
    captures: 0,
    needsRe2: false,
    caseless: false,
    leadingFlags: '',
  };
  const lead = /^\(\?([a-zA-Z]+)\)/.exec(pattern);
  if (lead) {
    const flags = lead[1] ?? '';
    scan.leadingFlags = lead[0];
    if (flags.includes('i')) scan.caseless = true;
    if (/[^sm]/.test(flags)) scan.needsRe2 = true;
    i = lead[0].length;
  }

  const readClass = (): { js: string; re2: string } => {
    const start = i;
    i++; // [
    if (pattern[i] === '^') i++;
    if (pattern[i] === ']') i++;
    while (i < pattern.length && pattern[i] !== ']') {
      if (pattern[i] === '\\') {
        const e = pattern[i + 1] ?? '';
        if ('pPQC'.includes(e) || (e === 'x' && pattern[i + 2] === '{')) scan.needsRe2 = true;
        i += 2;
        continue;
      }
      if (pattern[i] === '[' && pattern[i + 1] === ':') scan.needsRe2 = true;
      i++;
    }
    i++; // ]
    const text = pattern.slice(start, i);
    return { js: text, re2: text };
  };

  const readQuantifier = (): { min: number; max: number; lazy: boolean; quant: string } => {
    const start = i;
    let min = 1;
    let max = 1;
    const c = pattern[i];
    let quant = '';
    if (c === '*' || c === '+' || c === '?') {
      min = c === '+' ? 1 : 0;
      max = c === '?' ? 1 : Number.POSITIVE_INFINITY;
      i++;
    } else if (c === '{') {
      const m = /^\{(\d*)(,(\d*))?\}/.exec(pattern.slice(i));
      if (!m || (m[1] === '' && m[2] === undefined)) return { min, max, lazy: false, quant: '' };
      min = m[1] === '' ? 0 : Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
      quant = `{${min}${m[2] === undefined ? '' : `,${m[3] ?? ''}`}}`;
      i += m[0].length;
    } else {
      return { min, max, lazy: false, quant: '' };
    }
    if (quant === '') quant = pattern.slice(start, i);
    let lazy = false;
    if (pattern[i] === '?') {
      lazy = true;
      quant += '?';
      i++;
    }
    return { min, max, lazy, quant };
  };

  /** Reads one atom (without quantifier); returns undefined at `|`, `)` or the end. */
  const readAtom = (depth: number): Omit<Item, 'min' | 'max' | 'lazy' | 'quant'> | undefined => {
    let plainGroup = true;
    const c = pattern[i];
    if (c === undefined || c === ')' || c === '|') return undefined;
    if (c === '\\') {
      const e = pattern[i + 1] ?? '';
      i += 2;
      if (e === 'A') return { kind: 'other', js: '^', re2: '\\A' };
      if (e === 'z') return { kind: 'other', js: '$', re2: '\\z' };
      if (e === 'a') return { kind: 'lit', ch: '\x07', js: '\\x07', re2: '\\a' };
      if ('pPQC'.includes(e) || (e === 'x' && pattern[i] === '{')) scan.needsRe2 = true;
      if (PUNCT_ESCAPE.test(e)) return { kind: 'lit', ch: e, js: `\\${e}`, re2: `\\${e}` };
      const control = CONTROL_ESCAPES[e];
      if (control !== undefined) return { kind: 'lit', ch: control, js: `\\${e}`, re2: `\\${e}` };
      return { kind: 'other', js: `\\${e}`, re2: `\\${e}` };
    }
    if (c === '[') return { kind: 'other', ...readClass() };
    if (c === '.') {
      i++;
      return { kind: 'dot', js: '.', re2: '.' };
    }
    if (c === '^' || c === '$') {
      i++;
      return { kind: 'other', js: c, re2: c };
    }
    if (c === '(') {
      let openJs = '(';
      let openRe2 = '(';
      i++;
      if (pattern[i] === '?') {
        const named = /^\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(pattern.slice(i));
        if (named) {
          scan.captures++;
          openJs = `(?<${named[1]}>`;
          openRe2 = `(?P<${named[1]}>`;
          i += named[0].length;
        } else if (pattern[i + 1] === ':') {
          openJs = '(?:';
          openRe2 = '(?:';
          i += 2;
        } else {
          // inline flags `(?i:`, `(?i)` not at the start, anything else: RE2 runs it (or rejected it already)
          const flags = /^\?([a-zA-Z-]*)[:)]/.exec(pattern.slice(i));
          if (flags?.[1]?.includes('i')) scan.caseless = true;
          scan.needsRe2 = true;
          plainGroup = false;
          openJs = '(?';
          openRe2 = '(?';
          i++;
        }
      } else {
        scan.captures++;
      }
      let js = openJs;
      let re2 = openRe2;
      const innerStart = i;
      for (;;) {
        const inner = readItem(depth + 1);
        if (inner) {
          js += inner.js + inner.quant;
          re2 += inner.re2 + inner.quant;
          continue;
        }
        if (pattern[i] === '|') {
          js += '|';
          re2 += '|';
          i++;
          continue;
        }
        break;
      }
      const inner = pattern.slice(innerStart, i);
      i++; // )
      const group: Omit<Item, 'min' | 'max' | 'lazy' | 'quant'> = {
        kind: 'other',
        js: `${js})`,
        re2: `${re2})`,
      };
      if (plainGroup) group.inner = inner;
      return group;
    }
    i++;
    return { kind: 'lit', ch: c, js: c, re2: c };
  };

  const readItem = (depth: number): Item | undefined => {
    const atom = readAtom(depth);
    if (!atom) return undefined;
    return { ...atom, ...readQuantifier() };
  };

  for (;;) {
    const item = readItem(0);
    if (item) {
      scan.items.push(item);
      continue;
    }
    if (pattern[i] === '|') {
      scan.topAlternation = true;
      scan.items.push({ kind: 'other', js: '|', re2: '|', min: 1, max: 1, lazy: false, quant: '' });
      i++;
      continue;
    }
    if (i >= pattern.length) break;
    // an unbalanced `)`: RE2 rejects it before we get here; keep it so V8 reports it too
    scan.items.push({ kind: 'other', js: ')', re2: ')', min: 1, max: 1, lazy: false, quant: '' });
    i++;
  }
  return scan;
}

const render = (items: Item[], target: 'js' | 're2'): string =>
  items.map((it) => it[target] + it.quant).join('');

const isDotStar = (it: Item | undefined): boolean =>
  it !== undefined && it.kind === 'dot' && it.min === 0 && it.max === Number.POSITIVE_INFINITY;

/** Longest run of required literal characters among `items` (top level only). */
function requiredLiteral(items: Item[], prefixOnly: boolean): string | undefined {
  let best = '';
  let run = '';
  for (const it of items) {
    if (it.kind === 'lit' && it.ch !== undefined && it.min >= 1) {
      run += it.ch;
      if (it.max === 1 && it.min === 1) continue;
    }
    if (run.length > best.length) best = run;
    run = '';
    if (prefixOnly) break;
  }
  if (run.length > best.length) best = run;
  return best === '' ? undefined : best;
}

/** Sets of literals compared: the one whose shortest literal is longest wins (fewer literals on a tie). */
const better = (a: string[] | undefined, b: string[] | undefined): string[] | undefined => {
  if (!a) return b;
  if (!b) return a;
  const min = (x: string[]) => Math.min(...x.map((l) => l.length));
  if (min(a) !== min(b)) return min(a) > min(b) ? a : b;
  return a.length <= b.length ? a : b;
};

/** Drops literals that contain another literal of the set (the shorter one is present whenever they are). */
const minimal = (set: string[]): string[] =>
  [...new Set(set)].filter((l, _, all) => !all.some((o) => o !== l && l.includes(o)));

/**
 * A set of literals of which every match of `items` contains one: the longest required literal run, or
 * the union over a required group's alternatives, or, for an alternation, the union over its branches.
 */
function prefilterOf(items: Item[], topAlternation: boolean, depth = 0): string[] | undefined {
  if (depth > 4) return undefined;
  if (topAlternation) {
    const union: string[] = [];
    let branch: Item[] = [];
    for (const it of [...items, undefined]) {
      if (it !== undefined && !(it.kind === 'other' && it.js === '|' && it.quant === '')) {
        branch.push(it);
        continue;
      }
      const set = prefilterOf(branch, false, depth + 1);
      if (!set) return undefined;
      union.push(...set);
      branch = [];
    }
    return minimal(union);
  }
  const run = requiredLiteral(items, false);
  let best: string[] | undefined = run === undefined ? undefined : [run];
  for (const it of items) {
    if (it.inner === undefined || it.min < 1) continue;
    const inner = scanPattern(it.inner);
    if (inner.caseless || inner.leadingFlags !== '') continue;
    best = better(best, prefilterOf(inner.items, inner.topAlternation, depth + 1));
  }
  return best;
}

/**
 * Compiles `pattern` with Python `re.match` semantics (see the module comment).
 * @throws PatternSyntaxError when the pattern is outside the RE2 dialect or invalid.
 */
export function compilePattern(pattern: string): PatternMatcher {
  const error = patternError(pattern);
  if (error !== undefined) throw new PatternSyntaxError(pattern, error);
  const scan = scanPattern(pattern);
  const bt = backtrackingPattern(pattern);
  if (bt !== undefined) {
    const prefilter = scan.caseless ? undefined : prefilterOf(scan.items, scan.topAlternation);
    return new BacktrackingMatcher(pattern, new RegExp(`^(?:${bt.source})`, bt.flags), prefilter, bt.groups);
  }
  let items = scan.items;
  let strategy: PatternMatcher['strategy'] = 'anchored';
  let prefix: string | undefined;
  if (!scan.topAlternation) {
    if (isDotStar(items.at(-1)) && items.length > 1) items = items.slice(0, -1);
    const first = items[0];
    if (isDotStar(first) && first) {
      const rest = items.slice(1);
      if (first.lazy || scan.captures === 0) {
        strategy = 'search';
        items = rest;
      } else {
        prefix = scan.caseless ? undefined : requiredLiteral(rest, true);
        if (prefix !== undefined) {
          strategy = 'last-occurrence';
          items = rest;
        }
      }
    }
  }
  const prefilter = scan.caseless ? undefined : prefilterOf(scan.items, scan.topAlternation);
  const js = render(items, 'js');
  const flags = strategy === 'last-occurrence' ? 'sy' : 's';
  const source = strategy === 'anchored' ? `^(?:${js})` : js;
  if (!scan.needsRe2 && !scan.caseless && isLinearCapable(source, flags)) {
    return new V8Matcher(pattern, new RegExp(source, flags), strategy, prefilter, prefix, scan.captures);
  }
  const re2Source = scan.leadingFlags + render(scan.items, 're2');
  let re2: RE2JS;
  try {
    re2 = RE2JS.compile(re2Source);
  } catch (err) {
    throw new PatternSyntaxError(pattern, err instanceof Error ? err.message : String(err));
  }
  return new Re2Matcher(pattern, re2, prefilter, scan.captures);
}

/**
 * What every matcher shares: the literal prefilter (a line without any of its literals cannot match, so the
 * engine is not run) in front of the engine-specific `matchUnchecked`.
 */
abstract class PrefilteredMatcher {
  abstract readonly prefilter: readonly string[] | undefined;

  get literal(): string | undefined {
    return this.prefilter?.length === 1 ? this.prefilter[0] : undefined;
  }

  match(text: string): MatchGroup {
    if (this.prefilter !== undefined && !this.prefilter.some((l) => text.includes(l))) return null;
    return this.matchUnchecked(text);
  }

  abstract matchUnchecked(text: string): MatchGroup;
}

class V8Matcher extends PrefilteredMatcher implements PatternMatcher {
  readonly engine = 'v8';
  constructor(
    readonly pattern: string,
    private readonly re: RegExp,
    readonly strategy: PatternMatcher['strategy'],
    readonly prefilter: readonly string[] | undefined,
    private readonly prefix: string | undefined,
    readonly groups: number,
  ) {
    super();
  }

  get scansPrefilter(): boolean {
    return this.strategy === 'last-occurrence' && this.prefix !== undefined && this.literal === this.prefix;
  }

  matchUnchecked(text: string): MatchGroup {
    const re = this.re;
    if (this.strategy === 'last-occurrence') {
      const prefix = this.prefix as string;
      // the last occurrence, found forwards: V8's `indexOf` is a fast substring search, `lastIndexOf` a
      // naive backward scan (measured 2-3x slower on a 200-byte line); earlier ones only when it fails
      let at = text.indexOf(prefix);
      if (at < 0) return null;
      for (let next = text.indexOf(prefix, at + 1); next >= 0; next = text.indexOf(prefix, next + 1))
        at = next;
      while (at >= 0) {
        re.lastIndex = at;
        const m = re.exec(text);
        if (m) return m[1];
        at = at === 0 ? -1 : text.lastIndexOf(prefix, at - 1);
      }
      return null;
    }
    if (this.groups === 0) return re.test(text) ? undefined : null;
    const m = re.exec(text);
    return m ? m[1] : null;
  }
}

/**
 * A pattern only a backtracking engine runs (lookaround, backreferences), accepted because the static
 * analysis found it backtrack-safe (core/spec/pattern.ts). It reads at most `MAX_BACKTRACKING_LINE`
 * characters of a line, which bounds the time of one line (see test/rules/matcher.test.ts).
 */
class BacktrackingMatcher extends PrefilteredMatcher implements PatternMatcher {
  readonly engine = 'backtracking';
  readonly strategy = 'anchored';
  readonly scansPrefilter = false;
  constructor(
    readonly pattern: string,
    private readonly re: RegExp,
    readonly prefilter: readonly string[] | undefined,
    readonly groups: number,
  ) {
    super();
  }

  matchUnchecked(text: string): MatchGroup {
    const line = text.length > MAX_BACKTRACKING_LINE ? text.slice(0, MAX_BACKTRACKING_LINE) : text;
    const m = this.re.exec(line);
    if (!m) return null;
    return this.groups === 0 ? undefined : m[1];
  }
}

class Re2Matcher extends PrefilteredMatcher implements PatternMatcher {
  readonly engine = 're2';
  readonly strategy = 'anchored';
  readonly scansPrefilter = false;
  constructor(
    readonly pattern: string,
    private readonly re: RE2JS,
    readonly prefilter: readonly string[] | undefined,
    readonly groups: number,
  ) {
    super();
  }

  matchUnchecked(text: string): MatchGroup {
    const m = this.re.matcher(text);
    if (!m.lookingAt()) return null;
    if (this.groups === 0) return undefined;
    return m.group(1) ?? undefined;
  }
}
