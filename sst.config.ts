/// <reference path="./.sst/platform/config.d.ts" />
/**
 * TrainKeeper's infrastructure: a table of contents. The stage's configuration is `stacks/config.ts`
 * (stage entries + `TRAINKEEPER_DEPLOY_*` variables); the resources are the modules under `stacks/`,
 * composed in `stacks/app.ts`. Deploy with `npx sst deploy --stage <stage>` (docs/deploy.md).
 */
export default $config({
  async app(input) {
    const { isProductionStage, stageRegion } = await import('./stacks/config.ts');
    const stage = input.stage ?? 'dev';
    const production = isProductionStage(stage);
    // A stage without a valid configuration still evaluates here; `run()` then fails with every bad field
    // (SST shows errors thrown by `run()`, but hides those thrown by `app()`).
    const region = stageRegion(stage, process.env);
    return {
      name: 'trainkeeper',
      home: 'aws',
      removal: production ? 'retain' : 'remove',
      protect: production,
      providers: { aws: region ? { region: region as aws.Region } : {} },
    };
  },
  async run() {
    const { stageConfig } = await import('./stacks/config.ts');
    const { trainkeeper } = await import('./stacks/app.ts');
    return trainkeeper(stageConfig($app.stage, process.env));
  },
});
