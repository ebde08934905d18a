/**
 * The push after a decision is rate-limited per Lambda instance (it reads every counter and gauge); the
 * totals it skips go out with the next push.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoJobStore, ensureTable } from '../../../adapters/dynamo/store.ts';
import type { CounterTotal } from '../../../core/ports.ts';
import { memoryLogger } from '../../../functions/shell/logger.ts';
import { METRICS_PUSH_MIN_INTERVAL_MS, pushMetricsNowAndThen } from '../../../functions/shell/reconcile.ts';
import { type LocalDynamo, makeDocClient, startDynalite } from '../../support/dynamo.ts';

let dynamo: LocalDynamo;
let client: ReturnType<typeof makeDocClient>;
beforeAll(async () => {
  dynamo = await startDynalite();
  client = makeDocClient(dynamo.endpoint);
});
afterAll(async () => {
  client?.destroy();
  await dynamo?.stop();
});

describe('metrics push after decisions', () => {
  it('pushes at most once per interval per sink, and the next push carries what was skipped', async () => {
    await ensureTable(client, 'tk-push');
    const store = new DynamoJobStore({ client, tableName: 'tk-push' });
    let now = 1_000_000;
    const pushes: { counters: CounterTotal[] }[] = [];
    const deps = {
      metricStore: store,
      metrics: {
        recordDecision: async () => {},
        push: async (s: { counters: CounterTotal[] }) => void pushes.push(s),
      },
      clock: { now: () => now },
      log: memoryLogger(),
    };
    const total = (i: number) => pushes[i]!.counters.find((c) => c.name === 'x_total')?.value;
    await store.incrementCounters([{ name: 'x_total', labels: {}, by: 1 }]);
    await pushMetricsNowAndThen(deps);
    await store.incrementCounters([{ name: 'x_total', labels: {}, by: 1 }]);
    now += METRICS_PUSH_MIN_INTERVAL_MS - 1;
    await pushMetricsNowAndThen(deps);
    expect(pushes).toHaveLength(1);
    expect(total(0)).toBe(1);
    now += 1;
    await pushMetricsNowAndThen(deps);
    expect(pushes).toHaveLength(2);
    expect(total(1)).toBe(2);
  });
});
