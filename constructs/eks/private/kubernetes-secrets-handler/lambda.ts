import { type CustomResourceRequest, respondTo } from '../../../core/private/cfn-response';
import { handler as applyKubernetesSecrets } from './index';

/**
 * The Lambda entry point: CloudFormation invokes it directly (no Provider framework function), and it answers
 * through the pre-signed response URL.
 */
export async function handler(event: CustomResourceRequest): Promise<void> {
  await respondTo(event, (e) => applyKubernetesSecrets(e));
}
