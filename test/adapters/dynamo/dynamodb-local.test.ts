import { describe, it } from 'vitest';
import { hasJava, startDynamoDbLocal } from '../../support/dynamo.ts';
import { runStoreContract } from './job-store.contract.ts';

if (hasJava()) {
  runStoreContract('DynamoDB Local', startDynamoDbLocal);
} else {
  console.warn('SKIPPED: DynamoDB Local contract suite: no java on PATH (install openjdk-17-jre-headless)');
  describe.skip('store ports contract on DynamoDB Local (no java on PATH)', () => {
    it('needs java', () => {});
  });
}
