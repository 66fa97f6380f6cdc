export * from './workload';
export * from './ecs-service';
export * from './ec2-service';
export * from './external-service';
export * from './kubernetes-service';
