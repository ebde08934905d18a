/**
 * The building blocks every manifest-language validator shares (core/spec/parse.ts for whole manifests,
 * core/spec/log-rules.ts for rule lists), so that a field reads the same wherever it is checked:
 * plain-English Zod messages, strict objects whose unknown keys get a did-you-mean hint, integer fields
 * that also accept integer strings, `a.b[0].c` field paths, defensive readers of the raw document, and
 * the ordering of issues as their fields appear in the document.
 *
 * Invariant: pure (no I/O, no clock); every function here is total on any input.
 */
import { z } from 'zod';
import type { FieldIssue } from './types.ts';

// ---------------------------------------------------------------------------------------------------------
// Messages

const article = (noun: string): string => (/^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`);

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') {
    const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
    return `the string "${shown}"${value.includes('$') ? ' (an unsubstituted variable?)' : ''}`;
  }
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

const EXPECTED_NOUN: Record<string, string> = {
  object: 'mapping',
  array: 'list',
  int: 'integer',
  number: 'number',
  string: 'string',
  boolean: 'boolean (true or false)',
  record: 'mapping',
};

/** Zod error map turning raw issues into plain English (unknown keys are worded by `strict`). */
export const messageFor: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const noun = EXPECTED_NOUN[issue.expected] ?? issue.expected;
      return `must be ${article(noun)}, not ${describeValue(issue.input)}`;
    }
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') return `must list at least ${min} item${min === 1 ? '' : 's'}`;
      if (issue.origin === 'string')
        return min <= 1 ? 'must not be empty' : `must be at least ${min} characters`;
      return issue.inclusive === false ? `must be greater than ${min}` : `must be at least ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array') return `must list at most ${max} items`;
      if (issue.origin === 'string') return `must be at most ${max} characters`;
      return issue.inclusive === false ? `must be less than ${max}` : `must be at most ${max}`;
    }
    case 'invalid_value': {
      if (issue.input === undefined) return 'is required';
      const shown = issue.values.map((v) => `\`${String(v)}\``);
      const got = describeValue(issue.input);
      return shown.length === 1
        ? `must be ${shown[0]}, not ${got}`
        : `must be one of ${shown.join(', ')}, not ${got}`;
    }
    case 'invalid_union':
      return `has an invalid value: ${describeValue(issue.input)}`;
    default:
      return undefined;
  }
};

/** Levenshtein distance, for did-you-mean hints. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/**
 * The allowed key closest to `key`, if one is close enough to be a likely typo: a case-insensitive match
 * wins; otherwise the smallest edit distance within a third of the key's length (at least 2).
 */
export function closestKey(key: string, allowed: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameCase = allowed.find((k) => k.toLowerCase() === lower);
  if (sameCase) return sameCase;
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 3)) + 1;
  for (const candidate of allowed) {
    const d = editDistance(lower, candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function unknownFieldMessage(key: string, allowed: readonly string[]): string {
  const hint = closestKey(key, allowed);
  if (hint) return `unknown field; did you mean \`${hint}\`?`;
  return allowed.length > 0
    ? `unknown field; allowed here: ${allowed.map((k) => `\`${k}\``).join(', ')}`
    : 'unknown field';
}

/** `['spec', 'replicaSpecs', 0, 'name']` → `spec.replicaSpecs[0].name`; odd keys are quoted in brackets. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(String(part)))
      out += out === '' ? String(part) : `.${String(part)}`;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out;
}

/**
 * `base` followed by the relative `path`: `joinPath('rules', [0, 'operator'])` → `rules[0].operator`.
 * `base` is an already formatted path (`''` for the document root).
 */
function joinPath(base: string, path: readonly PropertyKey[]): string {
  const rest = formatPath(path);
  if (base === '' || rest === '') return base + rest;
  return rest.startsWith('[') ? base + rest : `${base}.${rest}`;
}

/**
 * Zod issues of a value found at `base` → field issues, one per unknown key (the lines `strict` wrote)
 * and one per other issue, with the issue's message (worded by `messageFor`).
 */
export function toFieldIssues(issues: readonly z.core.$ZodIssue[], base = ''): FieldIssue[] {
  const out: FieldIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const lines = issue.message.split('\n');
      issue.keys.forEach((key, i) => {
        out.push({ path: joinPath(base, [...issue.path, key]), message: lines[i] ?? 'unknown field' });
      });
    } else {
      out.push({ path: joinPath(base, issue.path), message: issue.message });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Schema pieces

/** Integer fields also accept integer strings (`replicas: "2"` after envsubst). */
export const intString = (v: unknown): unknown =>
  typeof v === 'string' && /^\s*-?\d+\s*$/.test(v) ? Number(v) : v;
export const numberString = (v: unknown): unknown =>
  typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)) ? Number(v) : v;

const integerError = (issue: { code?: string; input?: unknown }): string | undefined => {
  if (issue.code !== 'invalid_type') return undefined;
  return issue.input === undefined ? 'is required' : `must be an integer, not ${describeValue(issue.input)}`;
};
const integer = (min: number) => z.number({ error: integerError }).int({ error: integerError }).min(min);
export const int = (min: number) => z.preprocess(intString, integer(min));
export const optionalInt = (min: number) => z.preprocess(intString, integer(min).optional());
export const defaultInt = (min: number, value: number) =>
  z.preprocess(intString, integer(min).default(value));
export const finiteNumber = () => z.preprocess(numberString, z.number());

/**
 * A strict object schema whose unknown-key issue carries one line per unknown key (aligned with
 * `issue.keys`), each with a did-you-mean hint from this object's own keys; `toFieldIssues` splits the
 * lines into one issue per key.
 */
export function strict<T extends z.ZodRawShape>(shape: T) {
  const allowed = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => unknownFieldMessage(key, allowed)).join('\n')
        : undefined,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Reading the raw document (defensive: any shape may arrive here)

export type Raw = Record<string, unknown>;
export const asObject = (v: unknown): Raw | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : undefined;
export const asArray = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
export const asInt = (v: unknown): number | undefined => {
  const n = intString(v);
  return typeof n === 'number' && Number.isInteger(n) ? n : undefined;
};
export const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Report every later duplicate of a name in a list, pointing at the first one. */
export function checkUnique(items: unknown[], basePath: string, what: string, field = 'name'): FieldIssue[] {
  const seen = new Map<string, number>();
  const issues: FieldIssue[] = [];
  items.forEach((item, i) => {
    const name = asString(asObject(item)?.[field]);
    if (name === undefined) return;
    const first = seen.get(name);
    if (first === undefined) seen.set(name, i);
    else
      issues.push({
        path: `${basePath}[${i}].${field}`,
        message: `duplicates ${what} \`${name}\` (${basePath}[${first}])`,
      });
  });
  return issues;
}

// ---------------------------------------------------------------------------------------------------------
// Issue lists

export function dedupe(issues: FieldIssue[]): FieldIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const key = `${i.path}\u0000${i.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** How deep `inDocumentOrder` walks a document (a pod template needs about 15 levels). */
const ORDER_DEPTH = 64;

/**
 * Sort issues top to bottom as their fields appear in the manifest, so a reader can walk the file once.
 * An issue about a missing field sorts with its parent; the sort is stable. `raw` is the value found at
 * the formatted path `base` (`''`: the whole document).
 */
export function inDocumentOrder(issues: FieldIssue[], raw: unknown, base = ''): FieldIssue[] {
  const order = new Map<string, number>();
  // A YAML alias may repeat a node, even inside itself (`a: &a [*a]`): each node is walked once, where it
  // first appears, and no deeper than ORDER_DEPTH (deeper issues sort with their ancestor at that depth).
  const seen = new Set<object>();
  const walk = (value: unknown, path: PropertyKey[]): void => {
    order.set(joinPath(base, path), order.size);
    if (value === null || typeof value !== 'object' || seen.has(value) || path.length >= ORDER_DEPTH) return;
    seen.add(value);
    const entries: [PropertyKey, unknown][] = Array.isArray(value)
      ? [...value.entries()]
      : Object.entries(value);
    for (const [key, item] of entries) walk(item, [...path, key]);
  };
  walk(raw, []);
  const position = (path: string): number => {
    const ends = [...path.matchAll(/\["(?:[^"\\]|\\.)*"\]|\[\d+\]|\.?[^.[]+/g)].map(
      (m) => m.index + m[0].length,
    );
    for (let i = ends.length - 1; i >= 0; i--) {
      const found = order.get(path.slice(0, ends[i]));
      if (found !== undefined) return found;
    }
    return 0;
  };
  return issues
    .map((issue, i) => ({ issue, i, at: position(issue.path) }))
    .sort((a, b) => a.at - b.at || a.i - b.i)
    .map(({ issue }) => issue);
}
