import { type CustomResourceRequest, respondTo } from '../../../core/private/cfn-response';
import { handler as applyAuthMethod } from './index';

/**
 * The Lambda entry point: CloudFormation invokes it directly (no Provider framework function), and it answers
 * through the pre-signed response URL, which the function reaches through the VPC's S3 gateway endpoint.
 */
export async function handler(event: CustomResourceRequest): Promise<void> {
  await respondTo(event, (e) => applyAuthMethod(e));
}
