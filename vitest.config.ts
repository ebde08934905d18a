import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration suites start real processes (DynamoDB Local, Prometheus, agents, PyTorch);
    // two cores do not take more than this many at once without timing noise.
    maxWorkers: 2,
    // The AWS SDK's Node 20 support notice (SDK pinned exactly; Lambdas run Node 22) is noise in test output.
    env: { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  },
});
