/// <reference path="./.sst/platform/config.d.ts" />
/**
 * TrainKeeper's infrastructure: a table of contents. The stage's configuration is `stacks/config.ts`
 * (stage entries + `TRAINKEEPER_DEPLOY_*` variables); the resources are the modules under `stacks/`,
 * composed in `stacks/app.ts`. Deploy with `npx sst deploy --stage <stage>` (docs/deploy.md).
 */
export default $config({
  async app(input) {
    const { isProductionStage, stageConfig } = await import('./stacks/config.ts');
    const stage = input.stage ?? 'dev';
    const production = isProductionStage(stage);
    return {
      name: 'trainkeeper',
      home: 'aws',
      removal: production ? 'retain' : 'remove',
      protect: production,
      providers: { aws: { region: stageConfig(stage, process.env).region as aws.Region } },
    };
  },
  async run() {
    const { stageConfig } = await import('./stacks/config.ts');
    const { trainkeeper } = await import('./stacks/app.ts');
    return trainkeeper(stageConfig($app.stage, process.env));
  },
});
