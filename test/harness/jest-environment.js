// Jest test environment (jest.config.js `testEnvironment`): Node's, plus what a Jest worker keeps for all the test
// files it runs. Jest gives each test file its own module registry, so a module-level singleton lives for one
// file only; this module is loaded once per worker, outside the files' registries.
//
// What it keeps: one aws-cdk-lib CloudFormationValidatePlugin. Its WebAssembly engine takes seconds of CPU to start
// (about 10 s for the default environment's resource types), which every test file that checks compliance paid
// again. The plugin is handed to lib/validation.ts by test/harness/cloudformation.ts; what it reports does not
// depend on which app used it before (it starts a new engine when a template brings resource types it lacks).
const { TestEnvironment } = require('jest-environment-node');

let cloudFormationValidate;

class LambdaMeshTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.global.lambdaMeshWorker = Object.freeze({
      cloudFormationValidatePlugin() {
        if (!cloudFormationValidate) {
          const { CloudFormationValidatePlugin } = require('aws-cdk-lib');
          cloudFormationValidate = new CloudFormationValidatePlugin();
        }
        return cloudFormationValidate;
      },
    });
  }
}

module.exports = LambdaMeshTestEnvironment;
