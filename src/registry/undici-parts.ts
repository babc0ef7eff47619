/**
 * registry/undici-parts: the two pieces of undici the client uses — the connection-pooling Agent and the
 * promise `request` API — imported from their own modules. undici's index also loads fetch, WebSocket, caches
 * and mocks, which costs ~65 ms at every CLI start; these two modules load in a third of that.
 */
import type { Agent as AgentClass, Dispatcher } from 'undici';
import requestModule from 'undici/lib/api/api-request.js';
import AgentModule from 'undici/lib/dispatcher/agent.js';

export const Agent: typeof AgentClass = AgentModule;
export type Agent = AgentClass;

/** undici's `dispatcher.request(options)`, bound to an explicit dispatcher. */
export function request(
  dispatcher: Dispatcher,
  options: Dispatcher.RequestOptions,
): Promise<Dispatcher.ResponseData> {
  return requestModule.call(dispatcher, options);
}
