/**
 * registry/auth: turns registry challenges into Authorization headers. Basic credentials are sent as is;
 * Bearer tokens come from the challenge's realm (GET with Basic credentials, POST with a refresh token for
 * identity tokens, or anonymously) and are cached per (registry, scope set) until shortly before they expire.
 */

import { GantryError } from '../errors/index.js';
import type { Logger } from '../util/log.js';
import type { Challenge } from './challenge.js';
import { formatRegistryErrors, parseRegistryErrors } from './headers.js';
import type { Credential, CredentialResolver } from './types.js';

/** Fetches a URL with retries on transient failures; provided by the HTTP layer. */
export type TokenFetcher = (
  url: URL,
  init: { method: 'GET' | 'POST'; headers: Record<string, string>; body?: Buffer },
) => Promise<{ status: number; body: string }>;

interface CachedToken {
  token: string;
  expiresAt: number;
}

const DEFAULT_TOKEN_LIFETIME_S = 60;
/** Refresh this long before expiry so a token does not lapse between our check and the registry's. */
const EXPIRY_MARGIN_MS = 10_000;

export function scopeKey(scopes: readonly string[]): string {
  return [...new Set(scopes)].sort().join(' ');
}

export class Authenticator {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly credentials = new Map<string, Promise<Credential | undefined>>();

  constructor(
    private readonly resolver: CredentialResolver | undefined,
    private readonly fetchToken: TokenFetcher,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The Authorization header for a request, or undefined when the registry asked for none. */
  async header(
    registry: string,
    challenge: Challenge | undefined,
    scopes: readonly string[],
  ): Promise<string | undefined> {
    if (!challenge) return undefined;
    const credential = await this.credential(registry);
    if (challenge.scheme === 'basic') {
      if (credential?.kind !== 'basic') return undefined;
      return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.kind === 'registryToken') return `Bearer ${credential.token}`;
    const key = `${registry} ${scopeKey(scopes)}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > this.now()) return `Bearer ${cached.token}`;
    const token = await this.requestToken(registry, challenge, scopes, credential);
    this.tokens.set(key, token);
    return `Bearer ${token.token}`;
  }

  /** Whether any credential is configured for this registry (auth files, helpers, flags). */
  async hasCredential(registry: string): Promise<boolean> {
    return (await this.credential(registry)) !== undefined;
  }

  /** Forgets the cached token for these scopes, after the registry rejected it. */
  invalidate(registry: string, scopes: readonly string[]): void {
    this.tokens.delete(`${registry} ${scopeKey(scopes)}`);
  }

  private credential(registry: string): Promise<Credential | undefined> {
    let found = this.credentials.get(registry);
    if (!found) {
      found = this.resolver ? this.resolver(registry) : Promise.resolve(undefined);
      this.credentials.set(registry, found);
      found.catch(() => this.credentials.delete(registry));
    }
    return found;
  }

  private async requestToken(
    registry: string,
    challenge: Challenge,
    scopes: readonly string[],
    credential: Credential | undefined,
  ): Promise<CachedToken> {
    const realm = challenge.params.realm;
    if (!realm) {
      throw new GantryError('REGISTRY_ERROR', 'Bearer challenge without a realm', { subject: registry });
    }
    let url: URL;
    try {
      url = new URL(realm);
    } catch (cause) {
      throw new GantryError('REGISTRY_ERROR', `invalid token realm ${JSON.stringify(realm)}`, {
        subject: registry,
        cause,
      });
    }
    const service = challenge.params.service;
    const allScopes = [...new Set(scopes)];
    let response: { status: number; body: string };
    if (credential?.kind === 'identityToken') {
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: credential.token,
        client_id: 'gantry',
      });
      if (service) form.set('service', service);
      if (allScopes.length > 0) form.set('scope', allScopes.join(' '));
      response = await this.fetchToken(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: Buffer.from(form.toString()),
      });
    } else {
      if (service) url.searchParams.set('service', service);
      for (const scope of allScopes) url.searchParams.append('scope', scope);
      const headers: Record<string, string> = {};
      if (credential?.kind === 'basic') {
        headers.authorization = `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
        url.searchParams.set('account', credential.username);
      }
      response = await this.fetchToken(url, { method: 'GET', headers });
    }
    if (response.status === 401 || response.status === 403) {
      throw new GantryError(
        'UNAUTHORIZED',
        `token server rejected the credentials (HTTP ${response.status})${detail(response.body)}`,
        {
          subject: registry,
          status: response.status,
        },
      );
    }
    if (response.status !== 200) {
      throw new GantryError(
        'REGISTRY_ERROR',
        `token server answered HTTP ${response.status}${detail(response.body)}`,
        {
          subject: registry,
          status: response.status,
        },
      );
    }
    let parsed: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    try {
      parsed = JSON.parse(response.body);
    } catch (cause) {
      throw new GantryError('REGISTRY_ERROR', 'token server answered with invalid JSON', {
        subject: registry,
        cause,
      });
    }
    const token = typeof parsed.token === 'string' && parsed.token ? parsed.token : parsed.access_token;
    if (typeof token !== 'string' || !token) {
      throw new GantryError('REGISTRY_ERROR', 'token server answered without a token', { subject: registry });
    }
    const lifetime =
      typeof parsed.expires_in === 'number' && parsed.expires_in > 0
        ? parsed.expires_in
        : DEFAULT_TOKEN_LIFETIME_S;
    this.logger.debug(
      `${registry}: got a token for ${allScopes.join(' ') || '(no scope)'} valid ${lifetime}s`,
    );
    const lifetimeMs = lifetime * 1000;
    return { token, expiresAt: this.now() + lifetimeMs - Math.min(EXPIRY_MARGIN_MS, lifetimeMs / 4) };
  }
}

function detail(body: string): string {
  const errors = parseRegistryErrors(body);
  if (errors.length > 0) return `: ${formatRegistryErrors(errors)}`;
  const trimmed = body.trim().slice(0, 200);
  // Token servers often answer with a JSON `details` field or plain text; both are safe to quote, tokens are not sent back.
  return trimmed ? `: ${trimmed}` : '';
}
