export { ServiceAccountIssuer, type ServiceAccountIssuerConfig, ServiceAccountRole, type ServiceAccountRoleProps } from './service-account-role';
export { GlooLambdaFunction, type GlooLambdaFunctionOptions } from './gloo-function';
export * from './gloo-access';
export * from './gloo-routes';
export * from './gloo-install';
export * from './consul-kubernetes';
