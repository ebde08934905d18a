import { startDynalite } from '../support/dynamo.ts';
import { runJobStoreContract } from './job-store.contract.ts';

runJobStoreContract('dynalite', startDynalite);
