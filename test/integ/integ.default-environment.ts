/**
 * Integration test of the default environment (examples/config/default.yaml): deploys all its stacks, invokes the
 * model function `model-a-v1` and checks the whole path (function -> extension -> mesh gateway -> feature-store's
 * sidecar -> feature-store, and the result writer), then that the mesh refuses what no rule allows. integ-runner
 * destroys every stack afterwards.
 *
 * Run it against an AWS account as docs/integration-test.md describes; `npm run integ:snapshot` writes its snapshot
 * (test/integ/integ.default-environment.ts.snapshot/), which test/integ/snapshot.test.ts checks.
 *
 * @see https://docs.aws.amazon.com/cdk/api/v2/docs/integ-tests-alpha-readme.html
 */
import * as path from 'path';
import { ExpectedResult, type IApiCall, IntegTest, Match } from '@aws-cdk/integ-tests-alpha';
import { App, CfnResource, Duration, RemovalPolicies, Stack, Token } from 'aws-cdk-lib';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import { Acknowledgements } from '../../constructs/core';
import { loadConfigFile } from '../../lib/config';
import { MeshEnvironment } from '../../lib/environment';
import { addComplianceChecks } from '../../lib/validation';
import { cdkJsonContext } from '../harness/cdk-context';

/** The config under test, as the repository names it (also its source in error messages). */
const CONFIG_SOURCE = 'examples/config/default.yaml';
/** The function version the assertions invoke: its rules allow `GET /features*` on feature-store and no more. */
const MODEL_IDENTITY = 'model-a-v1';
/** The sample feature store derives an entity's features from its id, so any valid id has features. */
const ENTITY_ID = 'customer-42';
/** Fixes the assertion calls' salt when set (scripts/integ-snapshot.ts). */
const SALT_VARIABLE = 'LAMBDA_MESH_INTEG_SALT';

function main(): void {
  // integ-runner runs this file from test/integ, where the CLI finds no cdk.json: the feature flags come from the
  // repository's cdk.json, and win over the ones integ-runner passes, so the test deploys what `cdk deploy` would.
  const app = new App({ postCliContext: cdkJsonContext() });
  const config = loadConfigFile(path.join(__dirname, '..', '..', CONFIG_SOURCE));
  const environment = new MeshEnvironment(app, { config, configSource: CONFIG_SOURCE });
  makeDestroyable(app);

  const model = environment.functions.get(MODEL_IDENTITY);
  if (!model) {
    throw new Error(`${CONFIG_SOURCE} has no function version ${MODEL_IDENTITY} (it has ${[...environment.functions.keys()].join(', ')})`);
  }
  const functionStack = Stack.of(model);
  const region = Token.isUnresolved(functionStack.region) ? undefined : functionStack.region;
  const assertionStack = new Stack(app, `${config.name}-integ-assertions`, {
    ...(region !== undefined ? { env: { region } } : {}),
    description: `lambda-mesh ${config.name}: integration test assertions (${path.basename(__filename)})`,
  });
  // The assertions name the function by its literal name, not by a reference, so order them explicitly.
  assertionStack.addStackDependency(functionStack, `the assertions invoke ${MODEL_IDENTITY}`);

  const integ = new IntegTest(app, 'DefaultEnvironment', {
    // In the environment's order; `cdk deploy` follows the stacks' dependencies within it.
    testCases: environment.stacks,
    assertionStack,
    // The update workflow would first deploy the committed snapshot, whose assets the snapshot leaves out.
    stackUpdateWorkflow: false,
    // The environment pins its region (the Gloo routes in dist/ name it): deploy there only.
    ...(region !== undefined ? { regions: [region] } : {}),
  });

  // Invoke the alias when the function has one (provisioned concurrency), as callers do.
  const functionName = model.alias ? `${model.functionName}:${model.alias.aliasName}` : model.functionName;
  const scored = expectScore(integ, functionName);
  scored.next(expectRefusedWrite(integ, functionName));

  acknowledgeAssertionProviders(assertionStack);
  fixSalt(assertionStack);
  // As bin/app.ts: LAMBDA_MESH_GUARD_CACHE_DIR (optional) keeps cfn-guard's findings per template.
  addComplianceChecks(app, { guardCacheDir: process.env.LAMBDA_MESH_GUARD_CACHE_DIR || undefined });
  app.synth();
}

/**
 * Lets `cdk destroy` (which integ-runner runs at the end) remove everything it can. The environment keeps its
 * keys, secrets and logs and protects its load balancers from deletion, as production should; a test must not
 * leave them behind, and a protected load balancer would stop the control plane stack (and the VPC under it)
 * from being deleted at all. S3 buckets stay retained: the Consul snapshot bucket has object lock (governance
 * mode), so neither it nor its access-log bucket can be emptied by CloudFormation.
 */
function makeDestroyable(app: App): void {
  RemovalPolicies.of(app).destroy({ excludeResourceTypes: ['AWS::S3::Bucket'] });
  for (const c of app.node.findAll()) {
    if (c instanceof elbv2.NetworkLoadBalancer) {
      c.setAttribute('deletion_protection.enabled', 'false');
      Acknowledgements.guard(c, 'elbv2_deletion_protection_enabled_check', 'Turned off for the integration test only: integ-runner destroys the environment after the assertions, and a protected load balancer would keep the control plane stack, and the VPC it runs in, from being deleted. The environment deploys it protected.');
    }
  }
}

/**
 * Invokes the model as an HTTP client would (a Function URL / API Gateway proxy event) and expects a 200 with a
 * score: the function read the entity's features from feature-store and stored the score with result-writer,
 * both through the mesh. Retried for a while: the sidecars and the gateway may still be taking their first
 * configuration from Consul when the stacks finish.
 */
function expectScore(integ: IntegTest, functionName: string): IApiCall {
  const call = integ.assertions.invokeFunction({ functionName, payload: proxyEvent({ entity_id: ENTITY_ID }) });
  // integ-tests' matchers have no "any number": the handler's body is matched as Python's json.dumps writes it,
  // with the score a float from 0 to 1 (`0.9813...`, `1.0`, `3.2e-05`) and `stored` true (the result writer took it).
  const body = `^\\{"entity_id": "${ENTITY_ID}", "score": (?:[01]\\.[0-9]+|[1-9](?:\\.[0-9]+)?e-[0-9]+), "stored": true\\}$`;
  call.expect(ExpectedResult.objectLike({
    Payload: Match.serializedJson(Match.objectLike({ statusCode: 200, body: Match.stringLikeRegexp(body) })),
  }));
  return call.waitForAssertions({ totalTimeout: Duration.minutes(10), interval: Duration.seconds(20) });
}

/**
 * Asks the model to write features back (`POST /features/<id>`), which no rule allows it: feature-store's sidecar
 * answers 403 (Envoy's RBAC filter) and the handler reports the refusal.
 */
function expectRefusedWrite(integ: IntegTest, functionName: string): IApiCall {
  const update = { recency_days: 1, orders_30d: 2, avg_basket: 3, tenure_years: 4 };
  const call = integ.assertions.invokeFunction({ functionName, payload: proxyEvent({ entity_id: ENTITY_ID, update_features: update }) });
  const error = `^the mesh refused POST /features/${ENTITY_ID} on the feature store \\(RBAC: access denied\\): no mesh rule allows this model to make that call$`;
  return call.expect(ExpectedResult.objectLike({
    Payload: Match.serializedJson(Match.objectLike({
      statusCode: 403,
      body: Match.serializedJson(Match.objectLike({ error: Match.stringLikeRegexp(error) })),
    })),
  }));
}

/**
 * integ-tests-alpha gives every assertion call `salt: Date.now()`, so that CloudFormation runs it again on every
 * deploy. `npm run integ:snapshot` sets {@link SALT_VARIABLE} to fix it, so the snapshot changes only with the app.
 */
function fixSalt(assertionStack: Stack): void {
  const salt = process.env[SALT_VARIABLE];
  if (salt === undefined) {
    return;
  }
  for (const c of assertionStack.node.findAll()) {
    if (c instanceof CfnResource && c.cfnResourceType.startsWith('Custom::DeployAssert@')) {
      c.addPropertyOverride('salt', salt);
    }
  }
}

/** A proxy event with a JSON body, the shape lib/model-handler/README.md documents. */
function proxyEvent(body: Record<string, unknown>): string {
  return JSON.stringify({ body: JSON.stringify(body) });
}

/**
 * Acknowledges what the checks find in integ-tests-alpha's own resources, one resource at a time, so anything else
 * added to the assertion stack is still checked.
 */
function acknowledgeAssertionProviders(assertionStack: Stack): void {
  for (const c of assertionStack.node.findAll()) {
    if (!(c instanceof CfnResource)) {
      continue;
    }
    if (c.cfnResourceType === 'AWS::Lambda::Function') {
      Acknowledgements.guard(c, 'lambda_inside_vpc_check', 'An integ-tests-alpha assertion provider, deployed only for the integration test. It calls the Lambda and Step Functions APIs, and the environment\'s function subnets have no NAT route and no Step Functions endpoint, so in the VPC it could not work. integ-runner deletes it with the test.');
    } else if (c.cfnResourceType === 'AWS::StepFunctions::StateMachine') {
      Acknowledgements.guard(c, 'step_functions_state_machine_logging_enabled_check', 'The integ-tests-alpha waiter (waitForAssertions) only re-runs one assertion until it passes or times out; the execution history records each attempt and the assertion result is a stack output. integ-runner deletes it with the test.');
      Acknowledgements.guard(c, 'step_functions_state_machine_tracing_enabled_check', 'The integ-tests-alpha waiter (waitForAssertions) only polls an assertion provider; X-Ray would trace that polling, not the model function under test, which logs to its own log group. integ-runner deletes it with the test.');
    }
  }
}

main();
