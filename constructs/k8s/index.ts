// The Kubernetes half of lambda-mesh: cdk8s constructs for Knative Services in an Istio mesh. The typed classes
// generated from ../shared/crds (imports/) stay internal: the public API is the hand-written constructs below.
export * from './knative-service';
export * from './destination-rule';
export * from './gateway';
export * from './virtual-service';
export * from './peer-authentication';
export * from './authorization';
export * from './telemetry';
export * from './otel-collector';
export * from './istio-install';
export * from './knative-install';
