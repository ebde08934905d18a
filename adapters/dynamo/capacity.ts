/**
 * Write units as DynamoDB bills them, from an item's size (Amazon DynamoDB developer guide, "Item sizes and
 * formats" and "Read/write capacity mode"): a write costs one unit per started KB of the item, and a write
 * inside `TransactWriteItems` costs two. The store reports what DynamoDB says it consumed
 * (`ReturnConsumedCapacity`), except for transactions: DynamoDB Local answers 2 units for any transaction,
 * whatever its items, so those are counted here by these rules instead, with the writes of the secondary
 * indexes at the standard price (the guide prices transactional writes of the table; its indexes are
 * maintained as for any write).
 *
 * Sizes: an attribute is its name's UTF-8 bytes plus its value's: a string its UTF-8 bytes, a number one byte
 * per two significant digits plus one, a boolean or null one byte, binary its bytes, a list or map three
 * bytes plus one byte and the size of each element (a map element with its name).
 */

const utf8 = (s: string): number => Buffer.byteLength(s, 'utf8');

/** Significant digits of a number as DynamoDB keeps it (leading and trailing zeros trimmed). */
const significantDigits = (n: number): number => {
  const digits = Math.abs(n).toExponential().replace(/e.*$/, '').replace('.', '').replace(/0+$/, '');
  return Math.max(1, digits.length);
};

const valueBytes = (v: unknown): number => {
  if (typeof v === 'string') return utf8(v);
  if (typeof v === 'number') return Math.ceil(significantDigits(v) / 2) + 1;
  if (typeof v === 'boolean' || v === null || v === undefined) return 1;
  if (v instanceof Uint8Array) return v.byteLength;
  if (v instanceof Set) {
    let n = 0;
    for (const e of v) n += valueBytes(e);
    return n;
  }
  if (Array.isArray(v)) return v.reduce((n: number, e) => n + 1 + valueBytes(e), 3);
  if (typeof v === 'object') {
    let n = 3;
    for (const [k, e] of Object.entries(v as Record<string, unknown>)) n += 1 + utf8(k) + valueBytes(e);
    return n;
  }
  throw new TypeError(`capacity: no DynamoDB size for a ${typeof v}`);
};

/** The size DynamoDB gives an item (document client values). */
export const itemBytes = (item: Record<string, unknown>): number => {
  let n = 0;
  for (const [name, value] of Object.entries(item))
    if (value !== undefined) n += utf8(name) + valueBytes(value);
  return n;
};

/** Write units of one item written outside a transaction. */
export const writeUnits = (item: Record<string, unknown>): number =>
  Math.max(1, Math.ceil(itemBytes(item) / 1024));

/**
 * Write units of a `TransactWriteItems` of these puts on the table: each item's units, twice (its index
 * writes apart: `indexWriteUnits`).
 */
export const transactWriteUnits = (items: readonly { Put?: { Item?: Record<string, unknown> } }[]): number =>
  items.reduce((n, i) => n + 2 * writeUnits(i.Put?.Item ?? {}), 0);

/** An index's key attributes (hash and range). */
export interface IndexKeys {
  hashKey: string;
  rangeKey: string;
}

/**
 * Write units the indexes take for an item going from `before` (absent: a new item) to `after`: an index
 * whose key attributes are unchanged takes none (its entries project keys only: a sparse, KEYS_ONLY index
 * is not rewritten for other attributes); one whose key changed takes one to delete the old entry and one
 * to put the new (each entry is far under 1 KB).
 */
export const indexWriteUnits = (
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown>,
  indexes: readonly IndexKeys[],
): number => {
  const key = (item: Record<string, unknown> | undefined, i: IndexKeys) =>
    item?.[i.hashKey] !== undefined && item[i.rangeKey] !== undefined
      ? `${String(item[i.hashKey])}\u0000${String(item[i.rangeKey])}`
      : undefined;
  let units = 0;
  for (const i of indexes) {
    const was = key(before, i);
    const is = key(after, i);
    if (was === is) continue;
    if (was !== undefined) units++;
    if (is !== undefined) units++;
  }
  return units;
};
