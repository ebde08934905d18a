/**
 * The rule engine's literal prefilter: which of a fixed set of literals a line contains, found with one
 * regex scan per line for all of them (a set of `INCLUDES_MAX` literals or fewer: one `includes` each).
 *
 * Every rule pattern's prefilter (rules/matcher.ts) is a set of literals of which each match contains at
 * least one; the engine runs a pattern on a line only when the line contains one of them. Testing each
 * rule's literals with `includes` costs one call per literal per line; this set scans the line once and
 * records every literal present, so each rule then asks "any of my literal ids?" with array reads.
 *
 * Invariants: after `scan(text)`, `has(id)` is true exactly when `text` contains literal `id` (a
 * substring test, no false negatives and no false positives), so a prefilter built on it never drops a
 * line its pattern would match. `scan` returns whether the line contains a *marked* literal (the engine
 * marks the literals of its rarely-matching event rules, which it skips on lines without any). The
 * scan is linear in the line length (a regex alternation of plain literals never backtracks beyond the
 * longest literal; the `includes` of a small set are a bounded number of substring searches). Not reentrant: one scan's answers hold until the next `scan` (the engine scans and
 * reads synchronously, line by line, so sharing one set across calls is safe).
 */

const escapeLiteral = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/**
 * Sets of at most this many literals are scanned with one `includes` per literal instead of the regex:
 * measured on a training line, 3 literals cost ~110 ns by `includes` against ~650 ns by the regex (its
 * match objects and the lookup of each found literal), and the two meet around 16 literals.
 */
export const INCLUDES_MAX = 12;

/** A compiled set of literals; see the module comment. */
export class LiteralSet {
  /** Literal id → its text (ids are positions in the constructor's list). */
  readonly literals: readonly string[];
  /** One global regex finding any literal, longest first, or undefined for an empty set. */
  private readonly re: RegExp | undefined;
  private readonly ids: Map<string, number>;
  /** For literal i: the ids implied present when i is found at a position (i and its substrings). */
  private readonly implied: readonly Int32Array[];
  /** For literal i: whether finding it means a marked literal is present (it, or a substring, is marked). */
  private readonly signals: Uint8Array;
  /** `present[i] === stamp` ⇔ literal i is in the line of the current scan. */
  private readonly present: Int32Array;
  private stamp = 0;
  /** For a small set (`INCLUDES_MAX` literals at most): whether literal i is marked; scanned by `includes`. */
  private readonly markedIds: Uint8Array | undefined;

  /**
   * @param literals distinct, non-empty literals (ids are their positions).
   * @param marked which ids `scan` reports on (all when omitted).
   */
  constructor(literals: readonly string[], marked?: (id: number) => boolean) {
    this.literals = [...literals];
    if (new Set(literals).size !== literals.length) throw new Error('LiteralSet: literals must be distinct');
    if (literals.some((l) => l === '')) throw new Error('LiteralSet: literals must not be empty');
    this.ids = new Map(literals.map((lit, i) => [lit, i]));
    this.implied = literals.map(
      (lit) => new Int32Array(literals.flatMap((other, j) => (lit.includes(other) ? [j] : []))),
    );
    this.signals = new Uint8Array(
      this.implied.map((ids) => (ids.some((j) => (marked ? marked(j) : true)) ? 1 : 0)),
    );
    this.present = new Int32Array(literals.length);
    this.markedIds =
      literals.length <= INCLUDES_MAX
        ? new Uint8Array(literals.map((_, i) => (marked ? (marked(i) ? 1 : 0) : 1)))
        : undefined;
    const order = literals
      .map((_, i) => i)
      .sort((a, b) => (literals[b] as string).length - (literals[a] as string).length);
    this.re =
      literals.length === 0
        ? undefined
        : new RegExp(order.map((i) => escapeLiteral(literals[i] as string)).join('|'), 'g');
  }

  /** Records the literals `text` contains; returns whether a marked one is among them. */
  scan(text: string): boolean {
    if (this.stamp === 0x7fffffff) {
      this.present.fill(0);
      this.stamp = 0;
    }
    this.stamp++;
    const re = this.re;
    if (re === undefined) return false;
    const present = this.present;
    const stamp = this.stamp;
    let signal = false;
    const markedIds = this.markedIds;
    if (markedIds !== undefined) {
      // A few literals: one `includes` each beats the regex (no match objects, no substring lookups).
      const literals = this.literals;
      for (let i = 0; i < literals.length; i++) {
        if (!text.includes(literals[i] as string)) continue;
        present[i] = stamp;
        if (markedIds[i] === 1) signal = true;
      }
      return signal;
    }
    re.lastIndex = 0;
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      // the longest literal starting here was found; the shorter ones starting here are its prefixes,
      // and every literal inside it is implied (the next search restarts one position later)
      const id = this.ids.get(m[0]) as number;
      if (this.signals[id] === 1) signal = true;
      const implied = this.implied[id] as Int32Array;
      for (let k = 0; k < implied.length; k++) present[implied[k] as number] = stamp;
      re.lastIndex = m.index + 1;
    }
    return signal;
  }

  /** Whether literal `id` was in the last scanned line. */
  has(id: number): boolean {
    return this.present[id] === this.stamp;
  }

  /** Whether any of the literals `ids` was in the last scanned line. */
  hasAny(ids: Int32Array): boolean {
    const present = this.present;
    const stamp = this.stamp;
    for (let k = 0; k < ids.length; k++) if (present[ids[k] as number] === stamp) return true;
    return false;
  }
}
