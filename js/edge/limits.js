// Defaults shared by the worker (handler.js) and its build (build.mjs).

/** The request-body limit when none is configured: 64 MiB, the API's default. */
export const DEFAULT_MAX_REQUEST_BODY_BYTES = 64 * 1024 * 1024;
