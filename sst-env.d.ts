/* Hand-written stand-in for the file `sst dev`/`sst deploy` generate (they cannot run offline); keep it in
 * step with the components in stacks/. It types `Resource.<Name>` from `sst` for code that links them. The
 * Lambdas do not: they read the TRAINKEEPER_* variables functions/shell/config.ts documents. */

declare module 'sst' {
  export interface Resource {
    Api: { type: 'sst.aws.ApiGatewayV2'; url: string };
    Bus: { type: 'sst.aws.Bus'; arn: string; name: string };
    Table: { type: 'sst.aws.Dynamo'; name: string };
    ApiHandler: { type: 'sst.aws.Function'; name: string };
    LogsHandler: { type: 'sst.aws.Function'; name: string };
    SweepHandler: { type: 'sst.aws.Function'; name: string };
    EventsHandler: { type: 'sst.aws.Function'; name: string };
  }
}

import 'sst';
export {};
