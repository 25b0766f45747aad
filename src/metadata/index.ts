export * from './types.js';
export * from './model.js';
export * from './values.js';
export * from './physical.js';
