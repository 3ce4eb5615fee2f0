// A real OpenID Connect provider for the tests (npm `oidc-provider`), on a free
// port of 127.0.0.1. It prints one JSON line, {"issuer": "http://127.0.0.1:PORT"},
// once it listens, and runs until its stdin closes (the test that started it ended).
//
// Settings, by environment:
//   OIDC_CLIENT_ID, OIDC_CLIENT_SECRET  the one registered client (default nicehr /
//                                       nicehr-test-secret)
//   OIDC_EMAIL_DOMAIN                   people's addresses are <login>@<domain>
//
// Sign-in uses the package's development interactions: any login name with any
// password. A login name with an "@" is that address; "noemail" has none; a name
// starting with "lead" is in the groups ["nurses", "leads"], anyone else in
// ["nurses"]. Consent is taken as given, as a hospital's directory does for its
// own applications.

import http from 'node:http';
import Provider from 'oidc-provider';

const clientId = process.env.OIDC_CLIENT_ID || 'nicehr';
const clientSecret = process.env.OIDC_CLIENT_SECRET || 'nicehr-test-secret';
const domain = process.env.OIDC_EMAIL_DOMAIN || 'hospital.test';

function claimsOf(login) {
  const claims = { sub: login };
  if (login !== 'noemail') {
    claims.email = login.includes('@') ? login : `${login}@${domain}`;
    claims.email_verified = true;
  }
  claims.name = `Test ${login.split('@')[0]}`;
  claims.groups = login.startsWith('lead') ? ['nurses', 'leads'] : ['nurses'];
  return claims;
}

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      // Stands for any NICEHR test server; see redirectUriAllowed below.
      redirect_uris: ['http://127.0.0.1/api/auth/sso/test/callback'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
    }],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    // Claims go into the ID token (as Entra ID and Okta put groups there), not only
    // to the userinfo endpoint.
    conformIdTokenClaims: false,
    cookies: { keys: ['nicehr-test-cookie-key'] },
    async findAccount(ctx, sub) {
      return { accountId: sub, async claims() { return claimsOf(sub); } };
    },
    // Consent as given: a grant of what was asked for.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups');
      grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
      await grant.save();
      return grant;
    },
  });
  // The test servers listen on free ports: their callbacks differ only by port.
  const pattern = /^http:\/\/(127\.0\.0\.1|localhost):\d+\/api\/auth\/sso\/[a-z0-9_-]+\/callback$/;
  provider.Client.prototype.redirectUriAllowed = (uri) => pattern.test(uri);
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

// The test may stop reading our output; that is no reason to stop.
process.stdout.on('error', () => {});
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
