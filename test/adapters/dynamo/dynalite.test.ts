import { startDynalite } from '../../support/dynamo.ts';
import { runStoreContract } from './job-store.contract.ts';

runStoreContract('dynalite', startDynalite);
