import * as http from 'http';
import { type AddressInfo } from 'net';
import { type CustomResourceRequest, respondTo } from '../../../constructs/core/private/cfn-response';

/**
 * Against a local stand-in for CloudFormation's pre-signed S3 response URL: it records each PUT as the
 * documented response protocol describes it.
 */
describe('respondTo (against a local stand-in for the pre-signed S3 response URL)', () => {
  let server: http.Server;
  let url = '';
  const received: Array<{ method?: string; path?: string; contentType?: string; body: Record<string, unknown> }> = [];
  let failNext = 0;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(503).end();
          return;
        }
        received.push({ method: req.method, path: req.url, contentType: req.headers['content-type'], body: JSON.parse(body) as Record<string, unknown> });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/response?X-Amz-Signature=abc`;
  });
  afterAll(() => server.close());
  beforeEach(() => (received.length = 0));

  const event = (over: Partial<CustomResourceRequest> = {}): CustomResourceRequest => ({
    RequestType: 'Create',
    ResponseURL: url,
    StackId: 'arn:aws:cloudformation:us-east-1:111111111111:stack/s/1',
    RequestId: 'req-1',
    LogicalResourceId: 'Secrets',
    ResourceType: 'Custom::ConsulSecrets',
    ResourceProperties: {},
    ...over,
  });

  test('reports SUCCESS with the physical ID and data, echoing the request identifiers', async () => {
    await respondTo(event(), () => Promise.resolve({ PhysicalResourceId: 'consul-secrets', Data: { CaFingerprintSha256: 'ab' } }));
    expect(received).toEqual([{
      method: 'PUT',
      path: '/response?X-Amz-Signature=abc',
      contentType: '',
      body: { Status: 'SUCCESS', PhysicalResourceId: 'consul-secrets', Data: { CaFingerprintSha256: 'ab' }, StackId: event().StackId, RequestId: 'req-1', LogicalResourceId: 'Secrets' },
    }]);
  });

  test('reports FAILED with the reason; a failed Create keeps the request ID as physical ID (so the rollback Delete is harmless)', async () => {
    await respondTo(event(), () => Promise.reject(new Error('AccessDeniedException on arn:aws:secretsmanager:...:GossipKey')));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', Reason: 'AccessDeniedException on arn:aws:secretsmanager:...:GossipKey', PhysicalResourceId: 'req-1' });
  });

  test('a failed Update keeps the existing physical ID', async () => {
    await respondTo(event({ RequestType: 'Update', PhysicalResourceId: 'consul-secrets' }), () => Promise.reject(new Error('boom')));
    expect(received[0].body).toMatchObject({ Status: 'FAILED', PhysicalResourceId: 'consul-secrets' });
  });

  test('retries a failed PUT a bounded number of times', async () => {
    failNext = 2;
    await respondTo(event(), () => Promise.resolve({ PhysicalResourceId: 'p' }));
    expect(received).toHaveLength(1);
    failNext = 3;
    await expect(respondTo(event(), () => Promise.resolve({ PhysicalResourceId: 'p' }))).rejects.toThrow(/could not send the custom resource response: HTTP 503/);
    failNext = 0;
  });
});
