import { Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { GlooLambdaFunction } from '../../../constructs/eks';
import { fixture, meshError } from './fixtures';

describe('GlooLambdaFunction', () => {
  test('defaults: the identity as logical name, $LATEST, authorized on the qualified and the unqualified ARN', () => {
    const { stack } = fixture();
    const fn = GlooLambdaFunction.fromFunctionName('model-a-v1', 'ml-model-a-v1');
    expect([fn.logicalName, fn.functionName, fn.qualifier]).toEqual(['model-a-v1', 'ml-model-a-v1', '$LATEST']);
    expect(stack.resolve(fn.invocationArns(stack))).toEqual([
      'arn:aws:lambda:eu-west-1:123456789012:function:ml-model-a-v1',
      'arn:aws:lambda:eu-west-1:123456789012:function:ml-model-a-v1:$LATEST',
    ]);
  });

  test('a function of the app: its name and ARN are its own tokens; an alias narrows to the alias ARN', () => {
    const { stack } = fixture();
    const imported = lambda.Function.fromFunctionArn(stack, 'Imported', 'arn:aws:lambda:eu-west-1:123456789012:function:model-b');
    const fn = GlooLambdaFunction.fromFunction('model-b-v1', imported, { qualifier: 'live', logicalName: 'b' });
    expect(fn.functionName).toBe('model-b');
    expect(Stack.of(imported).resolve(fn.invocationArns(stack))).toEqual(['arn:aws:lambda:eu-west-1:123456789012:function:model-b:live']);
  });

  test.each([
    ['functionName', () => GlooLambdaFunction.fromFunctionName('model-a-v1', 'arn:aws:lambda:eu-west-1:123456789012:function:x')],
    ['qualifier', () => GlooLambdaFunction.fromFunctionName('model-a-v1', 'x', { qualifier: 'a b' })],
    ['identity', () => GlooLambdaFunction.fromFunctionName('Model_A', 'x')],
    ['logicalName', () => GlooLambdaFunction.fromFunctionName('model-a-v1', 'x', { logicalName: 'A' })],
  ])('fails when %s is malformed', (field, make) => {
    const err = meshError(make);
    expect(err.field).toBe(field);
    expect(err.location).toMatch(/^GlooLambdaFunction\(/);
  });
});
