/** Tests use the local control plane's DynamoDB stand-ins (dynalite, DynamoDB Local) as they are. */
export {
  hasJava,
  type LocalDynamo,
  makeDocClient,
  startDynalite,
  startDynamoDbLocal,
} from '../../local/dynamo.ts';
