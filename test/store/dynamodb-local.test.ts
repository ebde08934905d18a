import { describe, it } from 'vitest';
import { hasJava, startDynamoDbLocal } from '../support/dynamo.ts';
import { runJobStoreContract } from './job-store.contract.ts';

if (hasJava()) {
  runJobStoreContract('DynamoDB Local', startDynamoDbLocal);
} else {
  console.warn('SKIPPED: DynamoDB Local contract suite: no java on PATH (install openjdk-17-jre-headless)');
  describe.skip('JobStore contract on DynamoDB Local (no java on PATH)', () => {
    it('needs java', () => {});
  });
}
