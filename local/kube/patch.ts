/**
 * The three PATCH dialects of the Kubernetes API for the object kinds the local API server keeps:
 * JSON merge patch (RFC 7386), strategic merge patch (merge patch plus keyed list merging) and JSON patch
 * (RFC 6902). Pure functions over plain JSON values; the input is never mutated.
 */

/** A patch that cannot be applied; the API server answers 422 (or 409 for a failed `test` op). */
export class PatchError extends Error {}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (v: unknown): v is Record<string, Json> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** RFC 7386: objects merge recursively, `null` removes a key, anything else (lists too) replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

/**
 * List fields that strategic merge patch merges element-wise by a key instead of replacing, as the
 * Kubernetes types declare with `patchMergeKey` (pods, nodes, services, events). Every other list is
 * replaced as in a merge patch. Element directives: `$patch: delete` removes the element with that key,
 * `$patch: replace` on an element replaces it whole; a `$retainKeys`/`$setElementOrder` directive is
 * accepted and ignored.
 */
export const STRATEGIC_MERGE_KEYS: Readonly<Record<string, string>> = {
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  volumeDevices: 'devicePath',
  ports: 'containerPort',
  conditions: 'type',
  imagePullSecrets: 'name',
  hostAliases: 'ip',
  taints: 'key',
  addresses: 'type',
  ownerReferences: 'uid',
};

function strategicList(field: string, target: unknown, patch: Json[]): unknown {
  const key = STRATEGIC_MERGE_KEYS[field];
  if (!key || !Array.isArray(target) || !patch.every(isObject)) return structuredClone(patch);
  const out: unknown[] = target.map((e) => structuredClone(e));
  for (const element of patch as Record<string, Json>[]) {
    const id = element[key];
    const index = out.findIndex((e) => isObject(e) && (e as Record<string, Json>)[key] === id);
    const { $patch: directive, ...rest } = element;
    if (directive === 'delete') {
      if (index >= 0) out.splice(index, 1);
    } else if (index < 0 || directive === 'replace') {
      if (index >= 0) out[index] = rest;
      else out.push(strategicMerge({}, rest));
    } else {
      out[index] = strategicMerge(out[index], rest);
    }
  }
  return out;
}

/**
 * Strategic merge patch for our kinds: a merge patch in which the lists named in STRATEGIC_MERGE_KEYS merge
 * by key. Keys starting with `$` (`$patch`, `$retainKeys`, `$setElementOrder/...`, `$deleteFromPrimitiveList/...`)
 * are directives and never stored; `$patch: replace` on an object replaces it whole.
 */
export function strategicMerge(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) delete out[key];
    else if (Array.isArray(value)) out[key] = strategicList(key, out[key], value);
    else out[key] = strategicMerge(out[key], value);
  }
  return out;
}

/** One RFC 6902 operation. */
export interface JsonPatchOp {
  op: 'add' | 'remove' | 'replace' | 'move' | 'copy' | 'test';
  path: string;
  value?: unknown;
  from?: string;
}

function parsePointer(pointer: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}"`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function parentOf(doc: unknown, tokens: string[], pointer: string): { parent: unknown; last: string } {
  let cur = doc;
  for (const token of tokens.slice(0, -1)) {
    if (Array.isArray(cur)) cur = cur[Number(token)];
    else if (isObject(cur)) cur = cur[token];
    else cur = undefined;
    if (cur === undefined) throw new PatchError(`path "${pointer}" does not exist`);
  }
  return { parent: cur, last: tokens[tokens.length - 1]! };
}

function arrayIndex(arr: unknown[], token: string, pointer: string, forAdd: boolean): number {
  if (forAdd && token === '-') return arr.length;
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`invalid array index in "${pointer}"`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) {
    throw new PatchError(`array index out of range in "${pointer}"`);
  }
  return i;
}

function getAt(doc: unknown, pointer: string): unknown {
  let cur = doc;
  for (const token of parsePointer(pointer)) {
    if (Array.isArray(cur)) cur = cur[arrayIndex(cur, token, pointer, false)];
    else if (isObject(cur) && Object.hasOwn(cur, token)) cur = cur[token];
    else throw new PatchError(`path "${pointer}" does not exist`);
  }
  return cur;
}

function removeAt(doc: unknown, pointer: string): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) throw new PatchError('cannot remove the whole document');
  const { parent, last } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) return parent.splice(arrayIndex(parent, last, pointer, false), 1)[0];
  if (isObject(parent) && Object.hasOwn(parent, last)) {
    const old = parent[last];
    delete parent[last];
    return old;
  }
  throw new PatchError(`path "${pointer}" does not exist`);
}

function addAt(doc: unknown, pointer: string, value: unknown, replace: boolean): unknown {
  const tokens = parsePointer(pointer);
  if (tokens.length === 0) return value;
  const { parent, last } = parentOf(doc, tokens, pointer);
  if (Array.isArray(parent)) {
    const i = arrayIndex(parent, last, pointer, !replace);
    if (replace) parent[i] = value;
    else parent.splice(i, 0, value);
  } else if (isObject(parent)) {
    if (replace && !Object.hasOwn(parent, last)) throw new PatchError(`path "${pointer}" does not exist`);
    parent[last] = value as Json;
  } else {
    throw new PatchError(`path "${pointer}" does not exist`);
  }
  return doc;
}

/**
 * RFC 6902 JSON patch. Invariants: operations apply in order on a copy; any failing operation aborts the
 * whole patch (the stored object is untouched); every failure, a failed `test` included, is a PatchError
 * that the API server answers with 422 Invalid, as Kubernetes does.
 */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be a list of operations');
  let doc: unknown = structuredClone(target);
  ops.forEach((raw, i) => {
    if (!isObject(raw) || typeof raw.op !== 'string' || typeof raw.path !== 'string') {
      throw new PatchError(`operation [${i}] needs string "op" and "path"`);
    }
    const op = raw as unknown as JsonPatchOp;
    switch (op.op) {
      case 'add':
        doc = addAt(doc, op.path, structuredClone(op.value), false);
        break;
      case 'replace':
        doc = addAt(doc, op.path, structuredClone(op.value), true);
        break;
      case 'remove':
        removeAt(doc, op.path);
        break;
      case 'move': {
        if (typeof op.from !== 'string') throw new PatchError(`operation [${i}] "move" needs "from"`);
        const value = removeAt(doc, op.from);
        doc = addAt(doc, op.path, value, false);
        break;
      }
      case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError(`operation [${i}] "copy" needs "from"`);
        doc = addAt(doc, op.path, structuredClone(getAt(doc, op.from)), false);
        break;
      }
      case 'test':
        if (JSON.stringify(getAt(doc, op.path)) !== JSON.stringify(op.value)) {
          throw new PatchError(`test operation [${i}] failed at "${op.path}"`);
        }
        break;
      default:
        throw new PatchError(`operation [${i}] has unknown op "${String((raw as { op: unknown }).op)}"`);
    }
  });
  return doc;
}
