/**
 * CloudWatch Logs filter-pattern semantics, for the subset TrainKeeper's subscription filters use, so the
 * local stand-in drops exactly the events AWS would drop before they reach the `logs` handler. Pure: a
 * pattern string in, a predicate over one log event's message out.
 *
 * Source: the CloudWatch Logs User Guide, "Filter pattern syntax for metric filters, subscription
 * filters, filter log events, and Live Tail" (FilterAndPatternSyntax; its sections "Matching terms in
 * unstructured log events" and "Using filter patterns to match terms in JSON log events").
 *
 * Supported (everything else is a `FilterPatternError`, never a silent match-all):
 * - the empty pattern (or only whitespace): every event;
 * - unstructured terms, case sensitive, each matched anywhere in the message (the guide's example: `ERROR`
 *   matches `Exiting with ERRORCODE: -1`):
 *   - `ERROR Exception` — every term must occur;
 *   - `"Failed to process"` — a quoted term is one exact phrase; a term with any character other than a
 *     letter, digit or `_` must be quoted (`\"` and `\\` escape inside quotes);
 *   - `?ERROR ?WARN` — at least one of the `?` terms must occur (mixing `?` terms with plain or `-`
 *     terms is not documented and is refused);
 *   - `ERROR -WARN`, `"ERROR" - "Exiting"` — the `-` terms must not occur;
 * - JSON patterns `{ … }` over a message that is a JSON object:
 *   - selectors `$.a.b`, `$.a[0].b` (property names of letters, digits, `_`, `-`);
 *   - `=` / `!=` against a string (quoted, or bare alphanumerics) with `*` as a wildcard at the start
 *     and/or end only (`*Event`, `Event*`, `*Upd*`; a `*` inside, as in `Ev*ent`, is a literal `*`; a lone
 *     `*` matches any value);
 *   - `=`, `!=`, `<`, `>`, `<=`, `>=` against a number (`500`, `+1000`, `-1.5`, `10e-3`);
 *   - `IS TRUE`, `IS FALSE`, `IS NULL`, `EXISTS`, `NOT EXISTS`;
 *   - `&&`, `||`, parentheses; `&&` binds tighter than `||`.
 *   A comparison is false when the selector names nothing or names an object or array — for `!=` too
 *   (the guide: both `{$.users = 1}` and `{$.users != 1}` fail on an array). A message that is not JSON
 *   matches no JSON pattern.
 * Not supported: regular expressions (`%…%`), space-delimited patterns (`[w1, …]`).
 */

/** A pattern outside the supported subset, or malformed. `position` is the 0-based offset of the problem. */
export class FilterPatternError extends Error {
  constructor(
    readonly pattern: string,
    readonly position: number,
    reason: string,
  ) {
    super(`filter pattern ${JSON.stringify(pattern)} at ${position}: ${reason}`);
    this.name = 'FilterPatternError';
  }
}

/** One unstructured term and how it takes part. */
export interface Term {
  text: string;
  /** `all`: must occur; `any`: one of the `?` terms must occur; `none`: must not occur. */
  role: 'all' | 'any' | 'none';
}

type Path = (string | number)[];

/** A JSON pattern's expression tree. */
export type JsonExpr =
  | { kind: 'or'; items: JsonExpr[] }
  | { kind: 'and'; items: JsonExpr[] }
  | { kind: 'string'; path: Path; op: '=' | '!='; value: string }
  | { kind: 'number'; path: Path; op: '=' | '!=' | '<' | '>' | '<=' | '>='; value: number; text: string }
  | { kind: 'is'; path: Path; value: true | false | null }
  | { kind: 'exists'; path: Path; exists: boolean };

/** A parsed filter pattern. */
export type FilterPattern =
  | { kind: 'everything' }
  | { kind: 'terms'; terms: Term[] }
  | { kind: 'json'; expr: JsonExpr };

const BARE_TERM = /^[A-Za-z0-9_]+/;
const NAME = /^[A-Za-z0-9_-]+/;
const BARE_VALUE = /^[A-Za-z0-9_.*+-]+/;
// The guide's NUMBER: an integer or decimal with an optional sign, optionally followed by e<integer>.
const NUMBER = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** Parses `pattern`; throws `FilterPatternError` for anything outside the supported subset. */
export function parseFilterPattern(pattern: string): FilterPattern {
  const trimmed = pattern.trim();
  if (trimmed === '') return { kind: 'everything' };
  if (trimmed.startsWith('{')) return { kind: 'json', expr: new JsonParser(pattern).parse() };
  if (trimmed.startsWith('[')) {
    throw new FilterPatternError(pattern, pattern.indexOf('['), 'space-delimited patterns are not supported');
  }
  if (trimmed.startsWith('%')) {
    throw new FilterPatternError(
      pattern,
      pattern.indexOf('%'),
      'regular-expression patterns are not supported',
    );
  }
  return { kind: 'terms', terms: parseTerms(pattern) };
}

function parseTerms(pattern: string): Term[] {
  const terms: Term[] = [];
  let i = 0;
  const skipSpace = () => {
    while (i < pattern.length && /\s/.test(pattern[i] as string)) i++;
  };
  for (skipSpace(); i < pattern.length; skipSpace()) {
    let role: Term['role'] = 'all';
    if (pattern[i] === '?') {
      role = 'any';
      i++;
    } else if (pattern[i] === '-') {
      role = 'none';
      i++;
      skipSpace(); // the guide writes `"ERROR" - "Exiting"` as well as `ERROR -ARGUMENTS`
    }
    const start = i;
    let text: string;
    if (pattern[i] === '"') {
      [text, i] = readQuoted(pattern, i);
    } else {
      const bare = BARE_TERM.exec(pattern.slice(i));
      if (!bare) {
        throw new FilterPatternError(
          pattern,
          i,
          `a term with characters other than letters, digits and _ must be in double quotes`,
        );
      }
      text = bare[0];
      i += text.length;
    }
    if (i < pattern.length && !/\s/.test(pattern[i] as string)) {
      throw new FilterPatternError(
        pattern,
        i,
        pattern[start] === '"'
          ? 'expected a space after the quoted term'
          : 'a term with characters other than letters, digits and _ must be in double quotes',
      );
    }
    if (text === '') throw new FilterPatternError(pattern, start, 'an empty quoted term');
    terms.push({ text, role });
  }
  const roles = new Set(terms.map((t) => t.role));
  if (roles.has('any') && roles.size > 1) {
    throw new FilterPatternError(pattern, 0, '`?` terms mixed with plain or `-` terms are not supported');
  }
  if (!roles.has('all') && !roles.has('any')) {
    throw new FilterPatternError(pattern, 0, 'a pattern of only `-` terms is not supported');
  }
  return terms;
}

/** Reads a double-quoted string starting at `i` (the quote); returns its text and the offset after it. */
function readQuoted(pattern: string, i: number): [string, number] {
  let text = '';
  for (let j = i + 1; j < pattern.length; j++) {
    const c = pattern[j] as string;
    if (c === '"') return [text, j + 1];
    if (c === '\\' && (pattern[j + 1] === '"' || pattern[j + 1] === '\\')) {
      text += pattern[j + 1];
      j++;
    } else {
      text += c;
    }
  }
  throw new FilterPatternError(pattern, i, 'unterminated double quote');
}

/** Recursive descent over the JSON pattern grammar (module comment). */
class JsonParser {
  private i = 0;
  constructor(private readonly src: string) {}

  parse(): JsonExpr {
    this.space();
    this.expect('{');
    const expr = this.or();
    this.expect('}');
    this.space();
    if (this.i < this.src.length) this.fail('unexpected text after the closing }');
    return expr;
  }

  private or(): JsonExpr {
    const items = [this.and()];
    while (this.take('||')) items.push(this.and());
    return items.length === 1 ? (items[0] as JsonExpr) : { kind: 'or', items };
  }

  private and(): JsonExpr {
    const items = [this.primary()];
    while (this.take('&&')) items.push(this.primary());
    return items.length === 1 ? (items[0] as JsonExpr) : { kind: 'and', items };
  }

  private primary(): JsonExpr {
    if (this.take('(')) {
      const inner = this.or();
      this.expect(')');
      return inner;
    }
    return this.comparison();
  }

  private comparison(): JsonExpr {
    const path = this.selector();
    this.space();
    const rest = this.src.slice(this.i);
    const keyword = /^(IS\s+(TRUE|FALSE|NULL)|NOT\s+EXISTS|EXISTS)\b/.exec(rest);
    if (keyword) {
      this.i += keyword[0].length;
      if (keyword[2] === 'TRUE') return { kind: 'is', path, value: true };
      if (keyword[2] === 'FALSE') return { kind: 'is', path, value: false };
      if (keyword[2] === 'NULL') return { kind: 'is', path, value: null };
      return { kind: 'exists', path, exists: keyword[1] === 'EXISTS' };
    }
    const op = /^(!=|<=|>=|=|<|>)/.exec(rest)?.[1] as '=' | '!=' | '<' | '>' | '<=' | '>=' | undefined;
    if (!op) this.fail('expected =, !=, <, >, <=, >=, IS or EXISTS after the selector');
    this.i += op.length;
    this.space();
    if (this.src[this.i] === '"') {
      const at = this.i;
      const [value, next] = readQuoted(this.src, this.i);
      this.i = next;
      if (op !== '=' && op !== '!=') this.fail(`${op} compares numbers, not the string at ${at}`);
      return { kind: 'string', path, op, value };
    }
    const bare = BARE_VALUE.exec(this.src.slice(this.i))?.[0];
    if (!bare) this.fail('expected a value (a number, a bare word or a double-quoted string)');
    this.i += bare.length;
    if (NUMBER.test(bare)) return { kind: 'number', path, op, value: Number(bare), text: bare };
    if (op !== '=' && op !== '!=') this.fail(`${op} needs a number, got ${bare}`);
    return { kind: 'string', path, op, value: bare };
  }

  private selector(): Path {
    this.space();
    this.expect('$');
    const path: Path = [];
    for (;;) {
      if (this.src[this.i] === '.') {
        this.i++;
        const name = NAME.exec(this.src.slice(this.i))?.[0];
        if (!name) this.fail('expected a property name after .');
        this.i += name.length;
        path.push(name);
      } else if (this.src[this.i] === '[') {
        const index = /^\[(\d+)\]/.exec(this.src.slice(this.i));
        if (!index || path.length === 0) this.fail('expected [<index>] after a property');
        this.i += index[0].length;
        path.push(Number(index[1]));
      } else {
        break;
      }
    }
    if (path.length === 0) this.fail('expected a selector such as $.field');
    return path;
  }

  private space(): void {
    while (this.i < this.src.length && /\s/.test(this.src[this.i] as string)) this.i++;
  }

  private take(token: string): boolean {
    this.space();
    if (!this.src.startsWith(token, this.i)) return false;
    this.i += token.length;
    this.space();
    return true;
  }

  private expect(token: string): void {
    if (!this.take(token)) this.fail(`expected ${token}`);
  }

  private fail(reason: string): never {
    throw new FilterPatternError(this.src, this.i, reason);
  }
}

/** Whether `message` (one log event's message) matches the parsed pattern. */
export function matchesFilterPattern(pattern: FilterPattern, message: string): boolean {
  switch (pattern.kind) {
    case 'everything':
      return true;
    case 'terms': {
      const any = pattern.terms.filter((t) => t.role === 'any');
      if (any.length > 0) return any.some((t) => message.includes(t.text));
      return pattern.terms.every((t) => message.includes(t.text) === (t.role === 'all'));
    }
    case 'json': {
      if (!message.trimStart().startsWith('{')) return false;
      let value: unknown;
      try {
        value = JSON.parse(message);
      } catch {
        return false;
      }
      return typeof value === 'object' && value !== null && evaluate(pattern.expr, value);
    }
  }
}

/** Parses once, returns the predicate: what the local stand-in applies to every event. */
export function compileFilterPattern(pattern: string): (message: string) => boolean {
  const parsed = parseFilterPattern(pattern);
  return (message) => matchesFilterPattern(parsed, message);
}

const MISSING = Symbol('missing');

function select(root: unknown, path: Path): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (typeof key === 'number') {
      if (!Array.isArray(node) || key >= node.length) return MISSING;
      node = node[key];
    } else {
      if (typeof node !== 'object' || node === null || Array.isArray(node) || !Object.hasOwn(node, key)) {
        return MISSING;
      }
      node = (node as Record<string, unknown>)[key];
    }
  }
  return node;
}

function evaluate(expr: JsonExpr, root: unknown): boolean {
  switch (expr.kind) {
    case 'or':
      return expr.items.some((e) => evaluate(e, root));
    case 'and':
      return expr.items.every((e) => evaluate(e, root));
    case 'exists':
      return (select(root, expr.path) !== MISSING) === expr.exists;
    case 'is':
      return select(root, expr.path) === expr.value;
    case 'string': {
      const v = select(root, expr.path);
      if (typeof v !== 'string' && typeof v !== 'number') return false;
      return wildcardEquals(expr.value, String(v)) === (expr.op === '=');
    }
    case 'number': {
      const v = select(root, expr.path);
      if (typeof v === 'string') {
        // A string field compared with a bare number: only (in)equality of the text as written.
        if (expr.op === '=') return v === expr.text;
        if (expr.op === '!=') return v !== expr.text;
        return false;
      }
      if (typeof v !== 'number') return false;
      switch (expr.op) {
        case '=':
          return v === expr.value;
        case '!=':
          return v !== expr.value;
        case '<':
          return v < expr.value;
        case '>':
          return v > expr.value;
        case '<=':
          return v <= expr.value;
        case '>=':
          return v >= expr.value;
      }
    }
  }
}

/** `*` at the start and/or end of `pattern` matches any text there; anywhere else it is a literal `*`. */
function wildcardEquals(pattern: string, value: string): boolean {
  if (pattern === '*') return true;
  const head = pattern.startsWith('*');
  const tail = pattern.length > 1 && pattern.endsWith('*');
  const core = pattern.slice(head ? 1 : 0, tail ? -1 : undefined);
  if (head && tail) return value.includes(core);
  if (head) return value.endsWith(core);
  if (tail) return value.startsWith(core);
  return value === core;
}
