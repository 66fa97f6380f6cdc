/**
 * A local stand-in of the Lambda Extensions API (and of the one Runtime API call a runtime makes when it is ready),
 * for testing an external extension as a black box: plain HTTP on 127.0.0.1, its `host:port` is what Lambda puts in
 * `AWS_LAMBDA_RUNTIME_API`.
 *
 * - `POST /2020-01-01/extension/register`: `Lambda-Extension-Name` and `{"events":[...]}` (INVOKE, SHUTDOWN) are
 *   required; answers 200 with a new `Lambda-Extension-Identifier` and `{functionName, functionVersion, handler}`.
 * - `GET /2020-01-01/extension/event/next`: a long poll, held until the test sends an event the extension registered
 *   for ({@link LambdaExtensionsApiStandIn.invoke}, {@link LambdaExtensionsApiStandIn.shutdown}).
 * - `POST /2020-01-01/extension/init/error`, `.../exit/error`: `Lambda-Extension-Function-Error-Type` required;
 *   answers 202 `{"status":"OK"}`.
 * - `GET /2018-06-01/runtime/invocation/next`: recorded as the runtime being ready, and held.
 * - An unknown identifier is 403; anything else 404. Every call is recorded with the time it arrived.
 *
 * @see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-extensions-api.html
 * @see https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html
 */
import * as crypto from 'crypto';
import { EventEmitter } from 'events';
import * as http from 'http';
import type { AddressInfo } from 'net';
import { until } from './until';

/** A call as the stand-in received it; `at` is `performance.now()` on arrival. */
export interface ExtensionsApiCall {
  readonly kind: 'register' | 'next' | 'init/error' | 'exit/error' | 'runtime/next';
  readonly at: number;
  /** The extension identifier (for register: the one issued). */
  readonly id: string;
  /** For register: the extension name; for errors: the error type header. */
  readonly detail: string;
  /** The parsed JSON body (`{}` when empty). */
  readonly body: Readonly<Record<string, unknown>>;
}

interface Registration {
  readonly name: string;
  readonly events: readonly string[];
}

const EVENT_TYPES = new Set(['INVOKE', 'SHUTDOWN']);

/** The stand-in. `start()` it, pass `runtimeApi` as `AWS_LAMBDA_RUNTIME_API`, `close()` it after the test. */
export class LambdaExtensionsApiStandIn extends EventEmitter {
  /** Starts a stand-in on a free port of 127.0.0.1. */
  public static async start(): Promise<LambdaExtensionsApiStandIn> {
    const standIn = new LambdaExtensionsApiStandIn();
    await new Promise<void>((resolve) => standIn.server.listen(0, '127.0.0.1', resolve));
    return standIn;
  }

  /** Every call, in order of arrival. */
  public readonly calls: ExtensionsApiCall[] = [];
  private readonly registrations = new Map<string, Registration>();
  private readonly held = new Map<string, http.ServerResponse>();
  private readonly server = http.createServer((req, res) => this.receive(req, res));

  private constructor() {
    super();
  }

  /** `127.0.0.1:<port>`, the value of `AWS_LAMBDA_RUNTIME_API`. */
  public get runtimeApi(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** The calls of one kind. */
  public callsOf(kind: ExtensionsApiCall['kind']): ExtensionsApiCall[] {
    return this.calls.filter((c) => c.kind === kind);
  }

  /** Waits for the `n`-th call (from 1) of `kind`. */
  public waitFor(kind: ExtensionsApiCall['kind'], n = 1, timeoutMs = 5000): Promise<ExtensionsApiCall> {
    return until(this, () => this.callsOf(kind)[n - 1], `call ${n} of ${kind}`, timeoutMs);
  }

  /** Answers every held `event/next` of an extension registered for SHUTDOWN with a SHUTDOWN event. */
  public shutdown(reason: 'spindown' | 'timeout' | 'failure' = 'spindown'): number {
    return this.send('SHUTDOWN', { eventType: 'SHUTDOWN', shutdownReason: reason, deadlineMs: Date.now() + 2000 });
  }

  /** Answers every held `event/next` of an extension registered for INVOKE with an INVOKE event. */
  public invoke(requestId: string = crypto.randomUUID()): number {
    return this.send('INVOKE', {
      eventType: 'INVOKE',
      requestId,
      deadlineMs: Date.now() + 3000,
      invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:stand-in',
      tracing: { type: 'X-Amzn-Trace-Id', value: 'Root=1-00000000-000000000000000000000000;Sampled=0' },
    });
  }

  /** Closes the server and every held connection. */
  public async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private send(eventType: string, event: object): number {
    let sent = 0;
    for (const [id, res] of [...this.held]) {
      if (this.registrations.get(id)?.events.includes(eventType)) {
        this.held.delete(id);
        res.writeHead(200, { 'content-type': 'application/json', 'lambda-extension-event-identifier': crypto.randomUUID() });
        res.end(JSON.stringify(event));
        sent++;
      }
    }
    return sent;
  }

  private receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        body = text === '' ? {} : (JSON.parse(text) as Record<string, unknown>);
      } catch {
        return this.fail(res, 400, 'InvalidRequestPayload', 'the body is not JSON');
      }
      const id = String(req.headers['lambda-extension-identifier'] ?? '');
      const record = (kind: ExtensionsApiCall['kind'], callId: string, detail = ''): void => {
        this.calls.push({ kind, at, id: callId, detail, body });
        this.emit('change');
      };
      const route = `${req.method} ${(req.url ?? '').split('?')[0]}`;
      switch (route) {
        case 'POST /2020-01-01/extension/register': {
          const name = String(req.headers['lambda-extension-name'] ?? '');
          const events = body.events;
          if (name === '' || !Array.isArray(events) || !events.every((e) => typeof e === 'string' && EVENT_TYPES.has(e))) {
            return this.fail(res, 400, 'InvalidRequestPayload', 'Lambda-Extension-Name and events (INVOKE, SHUTDOWN) are required');
          }
          const issued = crypto.randomUUID();
          this.registrations.set(issued, { name, events: events as string[] });
          record('register', issued, name);
          res.writeHead(200, { 'content-type': 'application/json', 'lambda-extension-identifier': issued });
          return res.end(JSON.stringify({ functionName: 'stand-in', functionVersion: '$LATEST', handler: 'index.handler' }));
        }
        case 'GET /2020-01-01/extension/event/next':
          if (!this.registrations.has(id)) {
            return this.fail(res, 403, 'Extension.Forbidden', 'unknown Lambda-Extension-Identifier');
          }
          this.held.set(id, res);
          return record('next', id);
        case 'POST /2020-01-01/extension/init/error':
        case 'POST /2020-01-01/extension/exit/error': {
          const errorType = String(req.headers['lambda-extension-function-error-type'] ?? '');
          if (!this.registrations.has(id)) {
            return this.fail(res, 403, 'Extension.Forbidden', 'unknown Lambda-Extension-Identifier');
          }
          if (errorType === '') {
            return this.fail(res, 400, 'InvalidRequestPayload', 'Lambda-Extension-Function-Error-Type is required');
          }
          record(route.endsWith('init/error') ? 'init/error' : 'exit/error', id, errorType);
          res.writeHead(202, { 'content-type': 'application/json' });
          return res.end(JSON.stringify({ status: 'OK' }));
        }
        case 'GET /2018-06-01/runtime/invocation/next':
          return record('runtime/next', '');
        default:
          return this.fail(res, 404, 'NotFound', `the stand-in does not serve ${route}`);
      }
    });
  }

  private fail(res: http.ServerResponse, status: number, errorType: string, errorMessage: string): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ errorType, errorMessage }));
  }
}
