/**
 * Which log-rule patterns (`logPattern`, `stopPattern`) are accepted, and how the ones outside RE2 run.
 *
 * HyperPod's agent runs patterns with Python's `re`, so the accepted language is Python's. Two dialects:
 * - RE2 (most patterns, everything HyperPod's documented examples use): compiled with `re2js`, matched in
 *   linear time (rules/matcher.ts picks V8 with its linear fallback or re2js).
 * - Backtracking (patterns RE2 refuses because they use lookahead `(?=…)`/`(?!…)`, lookbehind
 *   `(?<=…)`/`(?<!…)` or backreferences `\1`/`(?P=name)`): no linear-time engine runs these, so they are
 *   translated to a JavaScript `RegExp` and accepted only when a static analysis finds them
 *   backtrack-safe (`backtrackingHazard`); the matcher then feeds them at most `MAX_BACKTRACKING_LINE`
 *   characters of a line. Together these bound the time of one line (measured in test/rules/matcher.test.ts).
 *
 * The analysis refuses, with the reason, exactly these shapes:
 * - a repeated group (`*`, `+`, `{m,n}` with m < n) holding a variable-length quantifier (`(a+)+`,
 *   `(\w+\s?)*`, `(a{1,2})+`), an alternation whose branches can start with the same character
 *   (`(a|ab)+`, `(\w|\d)*`), or a lookaround with an unbounded quantifier: exponential (or per-position
 *   quadratic) backtracking;
 * - a repeated backreference (`(a+)\1+`);
 * - more than `MAX_BACKTRACKING_DEGREE` unbounded quantifiers and backreferences in sequence (a trailing
 *   `.*` is free): a line of n characters can cost n^k steps for k of them.
 * Python's own compile errors (look-behind of variable width, a reference to a group that is not closed
 * yet, a bad escape) are reported as Python would. A backreference to a group that may not take part
 * (optional, or in one branch of an alternation) is refused: JavaScript matches it as empty where Python
 * fails the match.
 *
 * Pure: no I/O, no clock.
 */
import { RE2JS } from 're2js';

/** Most unbounded quantifiers and backreferences in sequence in a backtracking pattern. */
export const MAX_BACKTRACKING_DEGREE = 2;

/**
 * Longest prefix of a line a backtracking pattern reads (characters): with degree ≤ 2 a line costs at most
 * a few million backtracking steps. Longer lines are matched on this prefix (documented deviation).
 */
export const MAX_BACKTRACKING_LINE = 2048;

/** A pattern translated for V8's backtracking engine. */
export interface BacktrackingPattern {
  /** JavaScript source with Python `re.match` semantics when compiled as `^(?:source)` with `flags`. */
  source: string;
  /** `s` (Python's `.` on a line without `\n`), plus `i` for a leading `(?i)`. */
  flags: string;
  /** Number of capture groups. */
  groups: number;
}

// ---------------------------------------------------------------------------------------------------------
// A small parser of Python `re` syntax (only what the backtracking dialect needs)

type Node =
  | { t: 'seq'; items: Node[] }
  | { t: 'alt'; branches: Node[] }
  | { t: 'group'; kind: 'cap' | 'noncap' | 'look' | 'lookbehind'; open: string; body: Node; index?: number }
  | { t: 'quant'; atom: Node; min: number; max: number; lazy: boolean }
  | { t: 'char'; js: string; first: string | undefined }
  | { t: 'anchor'; js: string }
  | { t: 'backref'; index: number };

class PatternProblem extends Error {}

const JS_SPECIAL = /[\\^$.|?*+()[\]{}/]/;
const CONTROL_ESCAPES = new Set(['n', 't', 'r', 'f', 'v']);

class Parser {
  private i = 0;
  groups = 0;
  readonly names = new Map<string, number>();
  readonly closed = new Set<number>();
  /** JavaScript flags from a leading `(?i)`. */
  flags = '';

  constructor(private readonly s: string) {}

  parse(): Node {
    const lead = /^\(\?([a-zA-Z]+)\)/.exec(this.s);
    if (lead) {
      const flags = lead[1] ?? '';
      if (/[^aimsu]/.test(flags)) {
        throw new PatternProblem(
          `the inline flags (?${flags}) are not supported with lookaround or backreferences (only i, m, s, a, u)`,
        );
      }
      if (flags.includes('i')) this.flags = 'i';
      this.i = lead[0].length;
    }
    const node = this.alt();
    if (this.i < this.s.length) throw new PatternProblem(`unbalanced parenthesis at position ${this.i}`);
    return node;
  }

  private alt(): Node {
    const branches = [this.seq()];
    while (this.s[this.i] === '|') {
      this.i++;
      branches.push(this.seq());
    }
    return branches.length === 1 ? (branches[0] as Node) : { t: 'alt', branches };
  }

  private seq(): Node {
    const items: Node[] = [];
    while (this.i < this.s.length && this.s[this.i] !== '|' && this.s[this.i] !== ')') {
      const atom = this.atom();
      if (atom) items.push(this.quantified(atom));
    }
    return { t: 'seq', items };
  }

  private quantified(atom: Node): Node {
    const s = this.s;
    let min: number;
    let max: number;
    const c = s[this.i];
    if (c === '*' || c === '+' || c === '?') {
      min = c === '+' ? 1 : 0;
      max = c === '?' ? 1 : Number.POSITIVE_INFINITY;
      this.i++;
    } else if (c === '{') {
      const m = /^\{(\d*)(,(\d*))?\}/.exec(s.slice(this.i));
      if (!m || (m[1] === '' && m[2] === undefined)) return atom;
      min = m[1] === '' ? 0 : Number(m[1]);
      max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3]);
      if (max < min) throw new PatternProblem(`min repeat greater than max repeat at position ${this.i}`);
      this.i += m[0].length;
    } else {
      return atom;
    }
    if (atom.t === 'anchor') throw new PatternProblem(`nothing to repeat at position ${this.i - 1}`);
    let lazy = false;
    if (s[this.i] === '?') {
      lazy = true;
      this.i++;
    } else if (s[this.i] === '+') {
      throw new PatternProblem('possessive quantifiers are not supported');
    }
    const next = s[this.i];
    if (
      next === '*' ||
      next === '+' ||
      next === '?' ||
      (next === '{' && /^\{\d*,?\d*\}/.test(s.slice(this.i)))
    )
      throw new PatternProblem(`multiple repeat at position ${this.i}`);
    return { t: 'quant', atom, min, max, lazy };
  }

  private atom(): Node | undefined {
    const s = this.s;
    const c = s[this.i] as string;
    if (c === '(') return this.group();
    if (c === '[') return this.charClass();
    if (c === '\\') return this.escape();
    if (c === '*' || c === '+' || c === '?')
      throw new PatternProblem(`nothing to repeat at position ${this.i}`);
    if (c === '{' && /^\{\d*,?\d*\}/.test(s.slice(this.i)) && s[this.i + 1] !== '}')
      throw new PatternProblem(`nothing to repeat at position ${this.i}`);
    this.i++;
    if (c === '.') return { t: 'char', js: '.', first: undefined };
    if (c === '^' || c === '$') return { t: 'anchor', js: c };
    return { t: 'char', js: JS_SPECIAL.test(c) ? `\\${c}` : c, first: c };
  }

  private group(): Node | undefined {
    const s = this.s;
    const start = this.i;
    this.i++;
    let kind: 'cap' | 'noncap' | 'look' | 'lookbehind' = 'cap';
    let open = '(';
    let index: number | undefined;
    if (s[this.i] === '?') {
      const rest = s.slice(this.i);
      const named = /^\?P<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest);
      const namedRef = /^\?P=([A-Za-z_][A-Za-z0-9_]*)\)/.exec(rest);
      if (rest.startsWith('?#')) {
        const end = s.indexOf(')', this.i);
        if (end < 0) throw new PatternProblem(`missing ), unterminated comment at position ${start}`);
        this.i = end + 1;
        return undefined;
      }
      if (namedRef) {
        const ref = this.names.get(namedRef[1] as string);
        if (ref === undefined) throw new PatternProblem(`unknown group name '${namedRef[1]}'`);
        this.i += namedRef[0].length;
        return this.backref(ref, start);
      }
      if (named) {
        if (this.names.has(named[1] as string))
          throw new PatternProblem(`redefinition of group name '${named[1]}'`);
        index = ++this.groups;
        this.names.set(named[1] as string, index);
        open = `(?<${named[1]}>`;
        this.i += named[0].length;
      } else if (rest.startsWith('?:')) {
        kind = 'noncap';
        open = '(?:';
        this.i += 2;
      } else if (rest.startsWith('?=') || rest.startsWith('?!')) {
        kind = 'look';
        open = `(${rest.slice(0, 2)}`;
        this.i += 2;
      } else if (rest.startsWith('?<=') || rest.startsWith('?<!')) {
        kind = 'lookbehind';
        open = `(${rest.slice(0, 3)}`;
        this.i += 3;
      } else {
        throw new PatternProblem(
          `the group at position ${start} is not supported with lookaround or backreferences (inline flags, conditionals, atomic groups)`,
        );
      }
    } else {
      index = ++this.groups;
    }
    const body = this.alt();
    if (s[this.i] !== ')')
      throw new PatternProblem(`missing ), unterminated subpattern at position ${start}`);
    this.i++;
    if (index !== undefined) this.closed.add(index);
    if (kind === 'lookbehind' && fixedWidth(body) === undefined)
      throw new PatternProblem(`look-behind requires fixed-width pattern (position ${start})`);
    return index === undefined ? { t: 'group', kind, open, body } : { t: 'group', kind, open, body, index };
  }

  private backref(index: number, at: number): Node {
    if (!this.closed.has(index)) throw new PatternProblem(`cannot refer to an open group at position ${at}`);
    return { t: 'backref', index };
  }

  private charClass(): Node {
    const s = this.s;
    const start = this.i;
    this.i++;
    let js = '[';
    if (s[this.i] === '^') {
      js += '^';
      this.i++;
    }
    if (s[this.i] === ']') {
      js += '\\]';
      this.i++;
    }
    while (this.i < s.length && s[this.i] !== ']') {
      const c = s[this.i] as string;
      if (c === '\\') {
        const e = s[this.i + 1] ?? '';
        if (/[A-Za-z]/.test(e) && !/[dDwWsSbntrfvxu]/.test(e))
          throw new PatternProblem(`bad escape \\${e} at position ${this.i}`);
        js += e === 'b' ? '\\x08' : `\\${e}`;
        this.i += 2;
        continue;
      }
      js += c === '[' ? '\\[' : c;
      this.i++;
    }
    if (this.i >= s.length) throw new PatternProblem(`unterminated character set at position ${start}`);
    this.i++;
    return { t: 'char', js: `${js}]`, first: undefined };
  }

  private escape(): Node {
    const s = this.s;
    const at = this.i;
    const e = s[this.i + 1];
    if (e === undefined) throw new PatternProblem('bad escape (end of pattern)');
    const digits = /^[1-9]\d?/.exec(s.slice(this.i + 1));
    if (digits) {
      this.i += 1 + digits[0].length;
      return this.backref(Number(digits[0]), at);
    }
    this.i += 2;
    if (e === 'A') return { t: 'anchor', js: '^' };
    if (e === 'Z') return { t: 'anchor', js: '$' };
    if (e === 'b' || e === 'B') return { t: 'anchor', js: `\\${e}` };
    if ('dDwWsS'.includes(e)) return { t: 'char', js: `\\${e}`, first: undefined };
    if (e === 'a') return { t: 'char', js: '\\x07', first: '\x07' };
    if (e === '0') return { t: 'char', js: '\\x00', first: '\0' };
    if (CONTROL_ESCAPES.has(e)) return { t: 'char', js: `\\${e}`, first: `\\${e}` };
    if (e === 'x' || e === 'u') {
      const hex = new RegExp(`^[0-9a-fA-F]{${e === 'x' ? 2 : 4}}`).exec(s.slice(this.i));
      if (!hex) throw new PatternProblem(`incomplete escape \\${e} at position ${at}`);
      this.i += hex[0].length;
      return { t: 'char', js: `\\${e}${hex[0]}`, first: `\\${e}${hex[0]}` };
    }
    if (/[A-Za-z0-9]/.test(e)) throw new PatternProblem(`bad escape \\${e} at position ${at}`);
    return { t: 'char', js: JS_SPECIAL.test(e) ? `\\${e}` : e, first: e };
  }
}

/** The width every match of `node` has, or undefined when it varies (Python's look-behind rule). */
function fixedWidth(node: Node): number | undefined {
  switch (node.t) {
    case 'char':
      return 1;
    case 'anchor':
      return 0;
    case 'backref':
      return undefined;
    case 'group':
      return node.kind === 'cap' || node.kind === 'noncap' ? fixedWidth(node.body) : 0;
    case 'quant': {
      const w = fixedWidth(node.atom);
      return w !== undefined && node.min === node.max ? w * node.min : undefined;
    }
    case 'seq': {
      let total = 0;
      for (const item of node.items) {
        const w = fixedWidth(item);
        if (w === undefined) return undefined;
        total += w;
      }
      return total;
    }
    case 'alt': {
      const widths = node.branches.map(fixedWidth);
      return widths.every((w) => w !== undefined && w === widths[0]) ? widths[0] : undefined;
    }
  }
}

function render(node: Node): string {
  switch (node.t) {
    case 'char':
    case 'anchor':
      return node.js;
    case 'backref':
      return `(?:\\${node.index})`;
    case 'group':
      return `${node.open}${render(node.body)})`;
    case 'quant': {
      const max = node.max === Number.POSITIVE_INFINITY ? '' : String(node.max);
      const q =
        node.min === 0 && max === '' ? '*' : node.min === 1 && max === '' ? '+' : `{${node.min},${max}}`;
      const atom =
        node.atom.t === 'seq' || node.atom.t === 'alt' ? `(?:${render(node.atom)})` : render(node.atom);
      return `${atom}${q}${node.lazy ? '?' : ''}`;
    }
    case 'seq':
      return node.items.map(render).join('');
    case 'alt':
      return node.branches.map(render).join('|');
  }
}

// ---------------------------------------------------------------------------------------------------------
// The backtrack-safety analysis

const children = (node: Node): Node[] =>
  node.t === 'seq'
    ? node.items
    : node.t === 'alt'
      ? node.branches
      : node.t === 'group'
        ? [node.body]
        : node.t === 'quant'
          ? [node.atom]
          : [];

const some = (node: Node, test: (n: Node) => boolean): boolean =>
  test(node) || children(node).some((c) => some(c, test));

const isVariable = (n: Node): boolean => n.t === 'quant' && n.min !== n.max;
const isLook = (n: Node): boolean => n.t === 'group' && (n.kind === 'look' || n.kind === 'lookbehind');
const isUnbounded = (n: Node): boolean => n.t === 'quant' && n.max === Number.POSITIVE_INFINITY;

/** The first character a branch must start with when it is one fixed literal; undefined = could be many. */
function firstLiteral(node: Node): string | undefined {
  if (node.t === 'char') return node.first;
  if (node.t === 'seq') {
    const head = node.items[0];
    return head === undefined ? undefined : firstLiteral(head);
  }
  if (node.t === 'group' && (node.kind === 'cap' || node.kind === 'noncap')) return firstLiteral(node.body);
  if (node.t === 'quant' && node.min >= 1) return firstLiteral(node.atom);
  return undefined;
}

/** An alternation (anywhere in `node`) whose branches are not all distinct fixed first characters. */
const hasAmbiguousAlternation = (node: Node): boolean =>
  some(node, (n) => {
    if (n.t !== 'alt') return false;
    const firsts = n.branches.map(firstLiteral);
    return firsts.some((f) => f === undefined) || new Set(firsts).size !== firsts.length;
  });

/** How many unbounded quantifiers/backreferences in sequence `node` holds (the exponent of its cost). */
function degree(node: Node): number {
  switch (node.t) {
    case 'char':
    case 'anchor':
      return 0;
    case 'backref':
      return 1;
    case 'group':
      return degree(node.body);
    case 'quant': {
      const inner = degree(node.atom);
      if (node.min === node.max) return inner * node.max;
      return (node.max - node.min > 16 ? 1 : 0) + inner;
    }
    case 'seq':
      return node.items.reduce((sum, item) => sum + degree(item), 0);
    case 'alt':
      return Math.max(0, ...node.branches.map(degree));
  }
}

/** Why `node` may backtrack catastrophically, or undefined. */
function hazardOf(root: Node): string | undefined {
  let found: string | undefined;
  some(root, (n) => {
    if (found !== undefined || n.t !== 'quant' || n.max <= 1) return false;
    if (n.atom.t === 'backref') {
      found = 'a repeated backreference can backtrack catastrophically';
    } else if (n.min !== n.max) {
      if (some(n.atom, isVariable))
        found = `nested quantifiers (\`${render(n)}\`): a repeated group holding a variable-length quantifier can backtrack exponentially`;
      else if (hasAmbiguousAlternation(n.atom))
        found = `a repeated alternation whose branches can start alike (\`${render(n)}\`) can backtrack exponentially`;
      else if (some(n.atom, (m) => isLook(m) && some(m, isUnbounded)))
        found = `a lookaround with an unbounded quantifier inside a repeated group (\`${render(n)}\`) costs quadratic time per position`;
    }
    return found !== undefined;
  });
  if (found !== undefined) return found;
  let items = root.t === 'seq' ? root.items : [root];
  const last = items.at(-1);
  // a trailing `.*` always succeeds at once: it adds no backtracking
  if (last?.t === 'quant' && isUnbounded(last) && last.atom.t === 'char' && last.atom.js === '.')
    items = items.slice(0, -1);
  const k = degree({ t: 'seq', items });
  if (k > MAX_BACKTRACKING_DEGREE) {
    return `${k} unbounded quantifiers/backreferences in sequence (at most ${MAX_BACKTRACKING_DEGREE} with lookaround or backreferences): a line of n characters could cost n^${k} steps`;
  }
  return undefined;
}

/** A group that may not take part in a match: under `?`/`*`/`{0,…}` or in one branch of an alternation. */
function optionalGroups(node: Node, optional = false, out = new Set<number>()): Set<number> {
  if (node.t === 'group' && node.index !== undefined && optional) out.add(node.index);
  const inner =
    optional ||
    (node.t === 'quant' && node.min === 0) ||
    node.t === 'alt' ||
    (node.t === 'group' && node.open === '(?!') ||
    (node.t === 'group' && node.open === '(?<!');
  for (const c of children(node)) optionalGroups(c, inner, out);
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Entry points

const USES_PYTHON_ONLY = /\(\?<?[=!]|\\[1-9]|\(\?P=/;

function re2Reason(pattern: string): string | undefined {
  try {
    RE2JS.compile(pattern);
    return undefined;
  } catch (err) {
    return (err instanceof Error ? err.message : String(err)).replace(/^error parsing regexp:\s*/, '');
  }
}

/** Patterns `analyse` keeps the outcome of (beyond it, the memo starts over). */
const MAX_ANALYSED = 1024;
const analysed = new Map<string, Readonly<BacktrackingPattern> | undefined | PatternProblem>();

/**
 * `pattern` translated for the backtracking engine when it needs it (RE2 refuses it, it uses lookaround
 * or backreferences) and is backtrack-safe; `undefined` when RE2 runs it. Throws a `PatternProblem` with
 * the reason otherwise (see `patternError`). The outcome is a function of `pattern` and is kept: a rule's
 * pattern is analysed by the rule validator, the manifest's checks and the matcher in turn, and RE2's
 * compile, run cold by a CLI command, was most of `rules check`'s start-up (docs/benchmarks.md).
 */
function analyse(pattern: string): Readonly<BacktrackingPattern> | undefined {
  if (!analysed.has(pattern)) {
    if (analysed.size >= MAX_ANALYSED) analysed.clear();
    let outcome: Readonly<BacktrackingPattern> | undefined | PatternProblem;
    try {
      outcome = analyseOnce(pattern);
    } catch (err) {
      if (!(err instanceof PatternProblem)) throw err;
      outcome = err;
    }
    analysed.set(pattern, outcome);
  }
  const outcome = analysed.get(pattern);
  if (outcome instanceof PatternProblem) throw outcome;
  return outcome;
}

function analyseOnce(pattern: string): Readonly<BacktrackingPattern> | undefined {
  const re2 = re2Reason(pattern);
  if (re2 === undefined) return undefined;
  if (!USES_PYTHON_ONLY.test(pattern)) throw new PatternProblem(re2);
  const parser = new Parser(pattern);
  const tree = parser.parse();
  const hazard = hazardOf(tree);
  if (hazard !== undefined) throw new PatternProblem(`refused: ${hazard}`);
  const optional = optionalGroups(tree);
  if (some(tree, (n) => n.t === 'backref' && optional.has(n.index)))
    throw new PatternProblem(
      'a backreference to a group that may not take part in the match (optional, or in one alternative) is not supported',
    );
  const source = render(tree);
  const flags = `s${parser.flags}`;
  try {
    new RegExp(`^(?:${source})`, flags);
  } catch (err) {
    throw new PatternProblem(err instanceof Error ? err.message : String(err));
  }
  return Object.freeze({ source, flags, groups: parser.groups });
}

/**
 * Why a log-rule pattern (`logPattern`, `stopPattern`) cannot be used, or `undefined` when it can: RE2
 * compiles it, or it uses lookaround/backreferences and is backtrack-safe (see the module comment).
 * The message is the compiler's reason (RE2's without its "error parsing regexp: " prefix) or the
 * analysis's refusal.
 */
export function patternError(pattern: string): string | undefined {
  try {
    analyse(pattern);
    return undefined;
  } catch (err) {
    if (err instanceof PatternProblem) return err.message;
    throw err;
  }
}

/**
 * The backtracking translation of an accepted pattern that RE2 cannot run, or `undefined` for a pattern
 * RE2 runs. @throws Error with `patternError`'s reason for a pattern that is not accepted.
 */
export function backtrackingPattern(pattern: string): Readonly<BacktrackingPattern> | undefined {
  return analyse(pattern);
}

/** Number of capture groups of an accepted pattern (0 for one that is not accepted). */
export function captureGroups(pattern: string): number {
  try {
    const bt = analyse(pattern);
    return bt ? bt.groups : RE2JS.compile(pattern).groupCount();
  } catch {
    return 0;
  }
}
