// The OpenID Connect provider of the OAuth tests: panva's oidc-provider (the
// certified Node.js OP), on 127.0.0.1, port chosen by the system. Started and
// stopped by tests/oidc_op.py; prints one JSON line {"issuer": ...} when ready.
// Its accounts are made up from the login typed in its (development) sign-in
// form: "ann" is ann@example.org, verified; a login that is an address is that
// address; one starting with "unverified-" has an unverified email.
import http from "node:http";
import Provider from "oidc-provider";

const clients = JSON.parse(process.env.OP_CLIENTS || "[]");

function claimsOf(login) {
  const email = login.includes("@") ? login.toLowerCase() : `${login.toLowerCase()}@example.org`;
  const local = email.split("@")[0];
  return {
    sub: `sub-${login.toLowerCase()}`,
    email,
    email_verified: !login.startsWith("unverified-"),
    given_name: local.charAt(0).toUpperCase() + local.slice(1),
    family_name: "Oidc",
    name: `${local} Oidc`,
  };
}

const server = http.createServer();
server.listen(0, "127.0.0.1", () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => claimsOf(id),
    }),
    claims: {
      openid: ["sub"],
      email: ["email", "email_verified"],
      profile: ["name", "given_name", "family_name"],
    },
    pkce: { required: () => true },  // the relying party must use PKCE (S256)
    cookies: { keys: ["joist-test-op-cookie-key"] },
    features: { devInteractions: { enabled: true } },
    ttl: { AuthorizationCode: 60, AccessToken: 300, IdToken: 300, Interaction: 300,
           Session: 600, Grant: 600 },
  });
  provider.on("server_error", (ctx, err) => console.error("server_error", err));
  server.on("request", provider.callback());
  console.log(JSON.stringify({ issuer }));
});
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => { server.close(); process.exit(0); });
}
