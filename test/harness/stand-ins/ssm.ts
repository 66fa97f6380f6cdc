/**
 * A local stand-in of SSM Parameter Store, for handler tests: the AWS JSON 1.1 protocol (POST /, `X-Amz-Target:
 * AmazonSSM.<Operation>`, JSON bodies, `__type` errors with HTTP 400), for PutParameter, GetParameter,
 * DeleteParameter and GetParametersByPath, with the documented behaviour the handlers depend on:
 *
 * - SecureString values are stored with the KeyId given (`alias/aws/ssm` when none), and returned in clear only
 *   `WithDecryption`; without it, an opaque stand-in ciphertext comes back, as the service returns its ciphertext.
 * - Names: a leading `/` for hierarchies, `a-zA-Z0-9_.-/`, at most 15 levels (HierarchyLevelLimitExceededException),
 *   at most 1011 characters counting the ARN prefix (`arn:aws:ssm:<region>:<account>:parameter`), not prefixed with
 *   `aws` or `ssm`.
 * - Values: at most 4096 bytes in the Standard tier, 8192 in Advanced; an Advanced parameter cannot go back to
 *   Standard; an existing parameter without `Overwrite: true` is ParameterAlreadyExists; every write adds a version.
 * - A missing parameter is ParameterNotFound.
 *
 * Requests are recorded with their SigV4 headers, so tests can assert the SDK signed them.
 *
 * @see https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_PutParameter.html
 * @see https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParameter.html
 * @see https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_DeleteParameter.html
 * @see https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetParametersByPath.html
 * @see https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html
 */
import * as crypto from 'crypto';
import { AwsJsonError, AwsJsonServer, type AwsJsonRequest } from './aws-json-server';

/** The operations the stand-in implements. */
export type SsmOperation = 'PutParameter' | 'GetParameter' | 'DeleteParameter' | 'GetParametersByPath';

/** A stored parameter. */
export interface StoredParameter {
  readonly name: string;
  readonly type: 'String' | 'StringList' | 'SecureString';
  readonly value: string;
  /** For a SecureString: the KeyId of the request (or `alias/aws/ssm`). */
  readonly keyId?: string;
  readonly tier: 'Standard' | 'Advanced';
  readonly version: number;
  readonly lastModified: Date;
}

/** One request, as received. */
export interface SsmRequest {
  readonly operation: string;
  readonly authorization: string;
  readonly amzDate: string | undefined;
  readonly contentType: string | undefined;
  readonly body: Readonly<Record<string, unknown>>;
}

/** An error to answer instead of serving a request: for one operation, and one parameter name or all. */
export interface SsmFault {
  readonly operation: SsmOperation;
  /** @default - every name */
  readonly name?: string;
  /** The error's `__type`, e.g. `AccessDeniedException`. */
  readonly type: string;
  readonly message: string;
  /** @default 400 */
  readonly status?: number;
}

/** Options of the stand-in. */
export interface SsmStandInOptions {
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '123456789012' */
  readonly account?: string;
}

const STANDARD_MAX_BYTES = 4096;
const ADVANCED_MAX_BYTES = 8192;
const MAX_NAME_WITH_ARN = 1011;
const MAX_LEVELS = 15;

/** The stand-in server. `start()` returns the endpoint for `AWS_ENDPOINT_URL_SSM`. */
export class SsmStandIn {
  public readonly requests: SsmRequest[] = [];
  /** Every value ever written, to check that none of them leaks into logs or errors. */
  public readonly everStored: string[] = [];
  public faults: SsmFault[] = [];
  private readonly parameters = new Map<string, StoredParameter>();
  private readonly server = new AwsJsonServer({ version: '1.1', handle: (r) => this.serve(r) });
  private readonly region: string;
  private readonly account: string;

  public constructor(options: SsmStandInOptions = {}) {
    this.region = options.region ?? 'us-east-1';
    this.account = options.account ?? '123456789012';
  }

  public start(): Promise<string> {
    return this.server.start();
  }

  public stop(): Promise<void> {
    return this.server.stop();
  }

  /** Forgets every parameter, request and fault. */
  public reset(): void {
    this.parameters.clear();
    this.requests.length = 0;
    this.everStored.length = 0;
    this.faults = [];
  }

  /** The stored parameter, or undefined. */
  public parameter(name: string): StoredParameter | undefined {
    return this.parameters.get(name);
  }

  /** Every stored parameter name, sorted. */
  public names(): string[] {
    return [...this.parameters.keys()].sort();
  }

  /** Sets a parameter directly (what an earlier deployment or an operator left), bypassing the API. */
  public setParameter(p: Omit<StoredParameter, 'version' | 'lastModified'> & { readonly version?: number }): void {
    const previous = this.parameters.get(p.name);
    this.parameters.set(p.name, { ...p, version: p.version ?? (previous?.version ?? 0) + 1, lastModified: new Date() });
    this.everStored.push(p.value);
  }

  /** Removes a parameter directly. */
  public deleteParameter(name: string): void {
    this.parameters.delete(name);
  }

  /** The parameter names of the requests received for `operation`, in order. */
  public calls(operation: SsmOperation): string[] {
    return this.requests.filter((r) => r.operation === operation).map((r) => {
      const name = r.body.Name ?? r.body.Path;
      return typeof name === 'string' ? name : '';
    });
  }

  /** The ARN of a parameter, as this stand-in's region and account name it. */
  public arn(name: string): string {
    return `arn:aws:ssm:${this.region}:${this.account}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
  }

  private serve(request: AwsJsonRequest): object {
    const { target, body } = request;
    const operation = target.startsWith('AmazonSSM.') ? target.slice('AmazonSSM.'.length) : target;
    this.requests.push({ operation, authorization: request.authorization, amzDate: request.amzDate, contentType: request.contentType, body });
    const name = typeof body.Name === 'string' ? body.Name : typeof body.Path === 'string' ? body.Path : undefined;
    const fault = this.faults.find((f) => f.operation === operation && (f.name === undefined || f.name === name));
    if (fault) {
      throw new AwsJsonError(fault.type, fault.message, fault.status);
    }
    return this.dispatch(operation, body);
  }

  private dispatch(operation: string, body: Record<string, unknown>): object {
    switch (operation) {
      case 'PutParameter':
        return this.put(body);
      case 'GetParameter': {
        const name = this.validName(body.Name);
        const p = this.parameters.get(name);
        if (!p) {
          throw new AwsJsonError('ParameterNotFound', `Parameter ${name} not found.`);
        }
        return { Parameter: this.render(p, body.WithDecryption === true) };
      }
      case 'DeleteParameter': {
        const name = this.validName(body.Name);
        if (!this.parameters.delete(name)) {
          throw new AwsJsonError('ParameterNotFound', `Parameter ${name} not found.`);
        }
        return {};
      }
      case 'GetParametersByPath':
        return this.byPath(body);
      default:
        throw new AwsJsonError('InvalidAction', `the stand-in does not implement ${operation}`);
    }
  }

  private put(body: Record<string, unknown>): object {
    const name = this.validName(body.Name);
    const value = body.Value;
    if (typeof value !== 'string' || value.length === 0) {
      throw new AwsJsonError('ValidationException', "1 validation error detected: Value at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1");
    }
    const existing = this.parameters.get(name);
    const type = (body.Type ?? existing?.type) as StoredParameter['type'] | undefined;
    if (type !== 'String' && type !== 'StringList' && type !== 'SecureString') {
      throw new AwsJsonError('ValidationException', 'A parameter type is required when you create a parameter.');
    }
    if (existing && body.Overwrite !== true) {
      throw new AwsJsonError('ParameterAlreadyExists', 'The parameter already exists. To overwrite this value, set the overwrite option in the request to true.');
    }
    const bytes = Buffer.byteLength(value, 'utf8');
    const requested = body.Tier as string | undefined;
    let tier: StoredParameter['tier'];
    if (requested === 'Advanced' || requested === 'Standard') {
      tier = requested;
    } else if (requested === 'Intelligent-Tiering') {
      tier = existing?.tier === 'Advanced' || bytes > STANDARD_MAX_BYTES ? 'Advanced' : 'Standard';
    } else if (requested === undefined) {
      tier = existing?.tier ?? 'Standard';
    } else {
      throw new AwsJsonError('ValidationException', `1 validation error detected: Value '${requested}' at 'tier' failed to satisfy constraint`);
    }
    if (existing?.tier === 'Advanced' && tier === 'Standard') {
      throw new AwsJsonError('ValidationException', "You can't downgrade a parameter from the advanced-parameter tier to the standard-parameter tier.");
    }
    if (tier === 'Standard' && bytes > STANDARD_MAX_BYTES) {
      throw new AwsJsonError(
        'ValidationException',
        'Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.',
      );
    }
    if (bytes > ADVANCED_MAX_BYTES) {
      throw new AwsJsonError('ValidationException', 'Advanced tier parameters support a maximum parameter value of 8192 characters.');
    }
    const keyId = type === 'SecureString' ? (typeof body.KeyId === 'string' ? body.KeyId : 'alias/aws/ssm') : undefined;
    if (type !== 'SecureString' && body.KeyId !== undefined) {
      throw new AwsJsonError('ValidationException', 'KeyId is required for SecureString type parameter only.');
    }
    const version = (existing?.version ?? 0) + 1;
    this.parameters.set(name, { name, type, value, tier, version, lastModified: new Date(), ...(keyId === undefined ? {} : { keyId }) });
    this.everStored.push(value);
    return { Version: version, Tier: tier };
  }

  private byPath(body: Record<string, unknown>): object {
    const path = typeof body.Path === 'string' ? body.Path.replace(/\/+$/, '') : '';
    if (!path.startsWith('/') && path !== '') {
      throw new AwsJsonError('ValidationException', 'The parameter path must begin with a forward slash (/).');
    }
    const recursive = body.Recursive === true;
    const max = typeof body.MaxResults === 'number' ? Math.min(10, body.MaxResults) : 10;
    const start = typeof body.NextToken === 'string' ? Number(Buffer.from(body.NextToken, 'base64').toString('utf8')) : 0;
    const matching = [...this.parameters.values()]
      .filter((p) => p.name.startsWith(`${path}/`) && (recursive || !p.name.slice(path.length + 1).includes('/')))
      .sort((a, b) => a.name.localeCompare(b.name));
    const page = matching.slice(start, start + max);
    const next = start + max < matching.length ? Buffer.from(String(start + max)).toString('base64') : undefined;
    return { Parameters: page.map((p) => this.render(p, body.WithDecryption === true)), ...(next === undefined ? {} : { NextToken: next }) };
  }

  private render(p: StoredParameter, withDecryption: boolean): object {
    // Without decryption the service returns the ciphertext: here an opaque value that is not the plaintext.
    const value = p.type === 'SecureString' && !withDecryption ? `AQICAH${crypto.createHash('sha256').update(p.value).digest('base64')}` : p.value;
    return {
      Name: p.name,
      Type: p.type,
      Value: value,
      Version: p.version,
      LastModifiedDate: p.lastModified.getTime() / 1000,
      ARN: this.arn(p.name),
      DataType: 'text',
    };
  }

  /** Validates a name as the service does, throwing the service's error types. */
  private validName(raw: unknown): string {
    if (typeof raw !== 'string' || raw.length === 0) {
      throw new AwsJsonError('ValidationException', "1 validation error detected: Value at 'name' failed to satisfy constraint: Member must not be null");
    }
    if (!/^[A-Za-z0-9_.\-/]+$/.test(raw) || (raw.includes('/') && !raw.startsWith('/'))) {
      throw new AwsJsonError('ValidationException', 'Parameter name: can\'t be prefixed with "ssm" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_');
    }
    if (/^\/?(aws|ssm)/i.test(raw)) {
      throw new AwsJsonError('ValidationException', 'No access to reserved parameter name: ' + raw);
    }
    if (raw.split('/').length - 1 > MAX_LEVELS) {
      throw new AwsJsonError('HierarchyLevelLimitExceededException', 'A hierarchy can have a maximum of 15 levels.');
    }
    const arnPrefix = `arn:aws:ssm:${this.region}:${this.account}:parameter`;
    if (arnPrefix.length + (raw.startsWith('/') ? raw.length : raw.length + 1) > MAX_NAME_WITH_ARN) {
      throw new AwsJsonError('ValidationException', `Parameter name ${raw.slice(0, 40)}... exceeds the maximum length of ${MAX_NAME_WITH_ARN} characters including its ARN.`);
    }
    return raw;
  }
}
