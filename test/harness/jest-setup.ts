// Runs in every test file before its tests (jest.config.js `setupFiles`).
//
// aws-cdk-lib runs its CloudFormation schema and rule checks (a WebAssembly engine) on every synth of an App by
// default: most of the time of a synth that a test makes only to assert on the template. The tests turn that
// default off. The synths that check compliance (test/harness/cloudformation.ts, through lib/validation.ts)
// register the same checks explicitly, so they report them as `cdk synth` does; `npm run synth` is not affected.
process.env.CDK_VALIDATION = 'false';
