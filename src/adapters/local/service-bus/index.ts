export * from './local-service-bus';
export * from './pump';
export { ensureTopology } from './topology';
