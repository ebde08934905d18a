/**
 * How deep YAML text nests, found by one linear scan before any parser sees it. The `yaml` package parses
 * and composes recursively and has no depth option (`maxAliasCount` bounds alias expansion only): flow
 * collections nested ~780 deep overflow its stack, and the error reads "Maximum call stack size exceeded".
 * `yamlTooDeep` refuses such text first with the line and column where it gets too deep, as
 * `parseStrictJson` (functions/shell/http.ts) does for JSON.
 *
 * What is counted: each open flow collection (`[`, `{`, outside quoted scalars and comments) and each open
 * block node (an indentation level, and each compact `- `/`? ` marker on a line). Block scalars (`|`, `>`)
 * and quoted scalars are skipped, also across lines. The count is close to the real depth of a document:
 * it may count a plain scalar's continuation line that starts with `[` as a collection, and a block
 * sequence indented as deep as its key (`key:\n- a`) as no level; the exact depth of the parsed value is
 * checked after parsing (`tooDeep`), this scan only keeps the parser's recursion far from the stack limit.
 *
 * Pure and iterative: no recursion on the input.
 */

/** The deepest nesting a YAML body may have (as `MAX_BODY_DEPTH` for JSON; a pod template needs ~15). */
export const MAX_YAML_DEPTH = 100;

/** Where the text nests deeper than allowed (1-based line and column), or `undefined`. */
export interface YamlDepthIssue {
  line: number;
  column: number;
  message: string;
}

const indentOf = (line: string): number => {
  let i = 0;
  while (line[i] === ' ') i++;
  return i;
};

/**
 * Whether a node may start at `i` of a block-context line whose content starts at `start`: at the start,
 * or after `: `, `- ` or `? ` (skipping anchors `&a` and tags `!t` in between).
 */
const isNodeStart = (line: string, i: number, start: number): boolean => {
  let j = i - 1;
  let spaced = false;
  for (;;) {
    while (j >= start && (line[j] === ' ' || line[j] === '\t')) {
      j--;
      spaced = true;
    }
    let k = j;
    while (k >= start && line[k] !== ' ' && line[k] !== '\t') k--;
    const token = line.slice(k + 1, j + 1);
    if (token.length > 1 && (token[0] === '&' || token[0] === '!')) {
      j = k;
      continue;
    }
    break;
  }
  if (j < start) return true;
  const prev = line[j];
  return (
    spaced &&
    (prev === ':' || prev === '-' || prev === '?') &&
    (j === start || line[j - 1] === ' ' || prev === ':')
  );
};

/** The first place `text` nests deeper than `maxDepth` collections, or `undefined`. */
export function yamlTooDeep(text: string, maxDepth = MAX_YAML_DEPTH): YamlDepthIssue | undefined {
  const lines = text.split(/\r?\n/);
  /** Columns of the open block nodes. */
  const stack: number[] = [];
  let flow = 0;
  /** Block levels around the open flow collection. */
  let base = 0;
  let quote: '"' | "'" | undefined;
  /** Inside a block scalar: the indentation its parent node has, and its content's once known. */
  let scalar: { parent: number; content?: number } | undefined;
  const issue = (ln: number, i: number): YamlDepthIssue => ({
    line: ln + 1,
    column: i + 1,
    message: `nested deeper than ${maxDepth} levels at line ${ln + 1}, column ${i + 1}`,
  });

  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln] as string;
    let i = 0;
    if (scalar) {
      const ind = indentOf(line);
      if (line.trim() === '') continue;
      if (scalar.content === undefined && ind > scalar.parent) scalar.content = ind;
      if (scalar.content !== undefined && ind >= scalar.content) continue;
      scalar = undefined;
    }
    let start = 0;
    if (flow === 0 && quote === undefined) {
      const ind = indentOf(line);
      const rest = line.slice(ind);
      if (rest === '' || rest.startsWith('#')) continue;
      if (ind === 0 && (rest.startsWith('---') || rest.startsWith('...') || rest.startsWith('%'))) {
        stack.length = 0;
        if (rest.startsWith('%')) continue;
        i = 3;
      } else {
        while (stack.length > 0 && (stack.at(-1) as number) >= ind) stack.pop();
        stack.push(ind);
        i = ind;
        // Compact nested block nodes on one line: `- - a`, `? - a`.
        while ((line[i] === '-' || line[i] === '?') && (line[i + 1] === ' ' || i + 1 === line.length)) {
          i += 1;
          while (line[i] === ' ') i++;
          stack.push(i);
          // The last entry is the node after the markers: a level only if it is a collection.
          if (stack.length - 1 > maxDepth) return issue(ln, i);
        }
      }
      start = i;
    }
    let keyed = false;
    for (; i < line.length; i++) {
      const ch = line[i];
      if (quote === "'") {
        if (ch === "'") {
          if (line[i + 1] === "'") i++;
          else quote = undefined;
        }
        continue;
      }
      if (quote === '"') {
        if (ch === '\\') i++;
        else if (ch === '"') quote = undefined;
        continue;
      }
      if (ch === '#' && (i === 0 || line[i - 1] === ' ' || line[i - 1] === '\t')) break;
      if (flow > 0) {
        if (ch === '[' || ch === '{') {
          flow++;
          if (base + flow > maxDepth) return issue(ln, i);
        } else if (ch === ']' || ch === '}') {
          flow--;
        } else if (ch === '"' || ch === "'") {
          // A quote opens a scalar only where a scalar may start (`a'b` is a plain scalar).
          let j = i - 1;
          while (j >= 0 && (line[j] === ' ' || line[j] === '\t')) j--;
          if (j < 0 || '[{,:'.includes(line[j] as string)) quote = ch;
        }
        continue;
      }
      if (ch === ':' && !keyed && (line[i + 1] === ' ' || i + 1 === line.length)) {
        // The line's node is a mapping: a level of its own.
        keyed = true;
        if (stack.length > maxDepth) return issue(ln, start);
        continue;
      }
      if (!isNodeStart(line, i, start)) continue;
      if (ch === '[' || ch === '{') {
        // At the start of the line's content the collection is the line's node; after `key: ` its child.
        base = keyed ? stack.length : stack.length - 1;
        flow = 1;
        if (base + flow > maxDepth) return issue(ln, i);
      } else if (ch === '"' || ch === "'") {
        quote = ch;
      } else if (ch === '|' || ch === '>') {
        scalar = { parent: stack.at(-1) ?? 0 };
        break;
      }
    }
  }
  return undefined;
}
