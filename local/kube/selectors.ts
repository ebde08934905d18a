/**
 * Kubernetes label and field selectors, as the API server parses them from `?labelSelector=` and
 * `?fieldSelector=` and as the scheduler evaluates `LabelSelector` objects (podAntiAffinity) and
 * `nodeSelectorTerms`. One requirement type serves all three so they cannot drift apart.
 */

/** One parsed requirement: `key op values`. `Exists`/`DoesNotExist` carry no values. */
export interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values: string[];
}

/** Thrown for a selector that cannot be parsed; the API server answers 400 BadRequest with the message. */
export class SelectorError extends Error {}

const KEY = /^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?\/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$/;

function checkKey(key: string, selector: string): string {
  if (!KEY.test(key)) throw new SelectorError(`invalid label key "${key}" in selector "${selector}"`);
  return key;
}

/**
 * Parses the string form of a label selector (`a=b,c!=d,e in (x,y),f notin (z),g,!h`).
 * Invariants: an empty string selects everything; `=` and `==` are the same; `!=` also matches objects
 * without the key (as `NotIn`).
 */
export function parseLabelSelector(selector: string | undefined): Requirement[] {
  const text = (selector ?? '').trim();
  if (!text) return [];
  const out: Requirement[] = [];
  // Split on commas that are not inside parentheses.
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(') depth++;
    else if (ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  for (const raw of parts) {
    const part = raw.trim();
    if (!part) throw new SelectorError(`empty requirement in selector "${text}"`);
    const setMatch = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
    if (setMatch) {
      const values = setMatch[3]!
        .split(',')
        .map((v) => v.trim())
        .filter((v) => v !== '');
      out.push({
        key: checkKey(setMatch[1]!, text),
        operator: setMatch[2] === 'in' ? 'In' : 'NotIn',
        values,
      });
      continue;
    }
    const opMatch = /^([^=!<>\s]+)\s*(==|=|!=|>|<)\s*(\S*)$/.exec(part);
    if (opMatch) {
      const [, key, op, value] = opMatch as unknown as [string, string, string, string];
      checkKey(key, text);
      if (op === '>' || op === '<') out.push({ key, operator: op === '>' ? 'Gt' : 'Lt', values: [value] });
      else out.push({ key, operator: op === '!=' ? 'NotIn' : 'In', values: [value] });
      continue;
    }
    if (part.startsWith('!')) {
      out.push({ key: checkKey(part.slice(1).trim(), text), operator: 'DoesNotExist', values: [] });
      continue;
    }
    out.push({ key: checkKey(part, text), operator: 'Exists', values: [] });
  }
  return out;
}

/** True when `labels` satisfy every requirement (an empty list matches everything). */
export function matchesRequirements(
  requirements: readonly Requirement[],
  labels: Record<string, string> | undefined,
): boolean {
  const l = labels ?? {};
  return requirements.every((r) => {
    const has = Object.hasOwn(l, r.key);
    const value = l[r.key];
    switch (r.operator) {
      case 'In':
        return has && r.values.includes(value!);
      case 'NotIn':
        return !has || !r.values.includes(value!);
      case 'Exists':
        return has;
      case 'DoesNotExist':
        return !has;
      case 'Gt':
      case 'Lt': {
        if (!has) return false;
        const a = Number(value);
        const b = Number(r.values[0]);
        if (!Number.isInteger(a) || !Number.isInteger(b)) return false;
        return r.operator === 'Gt' ? a > b : a < b;
      }
    }
    return false;
  });
}

/** The `metav1.LabelSelector` object form (`matchLabels` + `matchExpressions`). */
export interface LabelSelectorObject {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

const OPERATORS = new Set(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']);

/**
 * Converts a `LabelSelector` object or a node-selector term's `matchExpressions` into requirements.
 * Invariant: an unknown operator throws (a selector that silently matched everything would schedule pods
 * where they must not go).
 */
export function requirementsFromObject(selector: LabelSelectorObject | undefined): Requirement[] {
  const out: Requirement[] = [];
  for (const [key, value] of Object.entries(selector?.matchLabels ?? {})) {
    out.push({ key, operator: 'In', values: [String(value)] });
  }
  for (const expr of selector?.matchExpressions ?? []) {
    if (!OPERATORS.has(expr.operator)) {
      throw new SelectorError(`unsupported selector operator "${expr.operator}" for key "${expr.key}"`);
    }
    out.push({
      key: expr.key,
      operator: expr.operator as Requirement['operator'],
      values: (expr.values ?? []).map(String),
    });
  }
  return out;
}

/** One field requirement: `path = value` or `path != value`. */
export interface FieldRequirement {
  path: string;
  equals: boolean;
  value: string;
}

/**
 * Parses a field selector (`metadata.name=x,status.phase!=Running,spec.nodeName=`).
 * Supported operators are `=`, `==` and `!=`; any dotted path of the object may be named (the real server
 * accepts only a per-kind list, among them metadata.name, metadata.namespace, spec.nodeName and
 * status.phase for pods, which are the ones we rely on).
 */
export function parseFieldSelector(selector: string | undefined): FieldRequirement[] {
  const text = (selector ?? '').trim();
  if (!text) return [];
  return text.split(',').map((raw) => {
    const m = /^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$/.exec(raw);
    if (!m) throw new SelectorError(`invalid field selector requirement "${raw}"`);
    return { path: m[1]!, equals: m[2] !== '!=', value: m[3]! };
  });
}

/** Reads a dotted path (`spec.nodeName`) of a plain object as a string; absent fields read as ''. */
export function readFieldPath(obj: unknown, path: string): string {
  let cur: unknown = obj;
  for (const segment of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return '';
    cur = (cur as Record<string, unknown>)[segment];
  }
  if (cur === undefined || cur === null) return '';
  return typeof cur === 'string' ? cur : String(cur);
}

/** True when the object satisfies every field requirement. */
export function matchesFields(requirements: readonly FieldRequirement[], obj: unknown): boolean {
  return requirements.every((r) => (readFieldPath(obj, r.path) === r.value) === r.equals);
}
