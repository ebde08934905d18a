/**
 * The one DynamoDB table, from the shared definition in adapters/dynamo/table.ts (keys, GSIs, TTL): on
 * demand, point-in-time recovery (SST's default for `sst.aws.Dynamo`), retained and protected from deletion
 * in production stages.
 */
import { TABLE } from '../adapters/dynamo/table.ts';
import type { StageConfig } from './config.ts';

/** Creates the job table. Invariant: its schema is `TABLE`, never restated here. */
export function storage(config: StageConfig): sst.aws.Dynamo {
  return new sst.aws.Dynamo(
    'Table',
    {
      fields: { ...TABLE.fields },
      primaryIndex: { ...TABLE.primaryIndex },
      globalIndexes: Object.fromEntries(
        Object.entries(TABLE.globalIndexes).map(([name, index]) => [
          name,
          { hashKey: index.hashKey, rangeKey: index.rangeKey, projection: index.projection },
        ]),
      ),
      ttl: TABLE.ttl,
      deletionProtection: config.retain,
    },
    { retainOnDelete: config.retain },
  );
}
