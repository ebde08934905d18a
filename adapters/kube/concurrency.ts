/**
 * Bounded fan-out for the adapter's per-pod calls (creates, deletes, agent calls): at most `limit` calls in
 * flight, results in input order. Invariant: `fn` is called once per item; a rejection of one item does
 * not stop the others (callers get every result and decide).
 */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const results: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      try {
        results[i] = { status: 'fulfilled', value: await fn(items[i] as T, i) };
      } catch (reason) {
        results[i] = { status: 'rejected', reason };
      }
    }
  };
  const workers = Math.max(1, Math.min(limit, items.length));
  await Promise.all(Array.from({ length: workers }, worker));
  return results;
}

/** Throws the first rejection of a settled batch (after every item ran), else returns the values. */
export function valuesOrThrow<R>(results: PromiseSettledResult<R>[]): R[] {
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<R>).value);
}
