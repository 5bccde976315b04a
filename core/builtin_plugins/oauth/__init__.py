"""``oauth`` (Girder's plugin): sign in with Google, GitHub, Globus, LinkedIn,
Bitbucket, Box, CILogon, Microsoft or any OpenID Connect issuer.

Routes (Girder's): ``GET oauth/provider?redirect=&list=`` gives each enabled
provider's sign-in URL (a fresh single-use state bound to ``redirect``, which
must be on this site); the provider sends the browser to ``GET
oauth/{provider}/callback?code=&state=``, which exchanges the code, finds,
links or creates the account, and redirects to ``redirect`` with
``girderToken=`` (and the ``girderToken`` cookie set), or with
``oauthError=<message>`` when the provider failed or the account may not sign
in (``error=<reason>`` too, Girder's ``accountApproval`` ...). Joist adds
``GET oauth/account`` (how the caller signs in) and ``DELETE
oauth/{provider}/link`` (unlink; ends that provider's sessions at once).

Events: ``oauth.auth_callback.before`` ``{provider, token}`` and
``oauth.auth_callback.after`` ``{provider, token, user}``; a handler that
prevents the default stops the sign-in (the browser goes back to
``redirect`` without a token), as in Girder.
"""

from __future__ import annotations

import builtins
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from bson import ObjectId

from ...auth.scopes import USER_AUTH, USER_INFO_READ
from ...db.engine import CollectionSpec
from ...errors import AuthenticationError, CoreError, ValidationError
from ...plugins import Plugin, PluginInfo, Redirect, RouteError, RouteParam
from . import settings as keys
from .accounts import OAuthAccounts, identity_gate
from .flow import OAuthFlow, ProviderError, StateError

log = logging.getLogger("joist.plugins.oauth")

STATES = CollectionSpec("oauth_state", ttl_field="expires")
BEFORE = "oauth.auth_callback.before"
AFTER = "oauth.auth_callback.after"


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
             if k not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


class OAuthPlugin(Plugin):
    name = "oauth"
    description = "Allow users to log in using OAuth2 and OpenID Connect providers."
    url = "https://girder.readthedocs.io/en/latest/plugins.html#oauth-login"

    def load(self, info: PluginInfo) -> None:
        for definition in keys.definitions():
            info.add_setting(definition)
        services = info.services
        flow = OAuthFlow(services.settings, info.collection(STATES))
        accounts = OAuthAccounts(services)
        tokens = services.auth.tokens

        def base(ctx: Any) -> str:
            root = str(services.settings.get("core.server_root") or "").rstrip("/")
            return root or ctx.request.base_url()

        def site_redirect(ctx: Any, redirect: str) -> str:
            """``redirect`` on this site (no open redirect through the callback)."""
            here = base(ctx)
            if redirect.startswith("/") and not redirect.startswith("//"):
                return here + redirect
            target, own = urlsplit(redirect), urlsplit(here)
            if (target.scheme, target.netloc) in {(own.scheme, own.netloc), (
                    urlsplit(ctx.request.base_url()).scheme,
                    urlsplit(ctx.request.base_url()).netloc)}:
                return redirect
            raise ValidationError("redirect must be a page of this site.", field="redirect")

        def list_providers(ctx: Any, redirect: str, list: bool) -> Any:
            target = site_redirect(ctx, redirect)
            entries: builtins.list[dict[str, Any]] = []  # "list" is the parameter
            specs = flow.enabled()
            for spec, found in zip(specs, flow.all_endpoints(specs), strict=True):
                callback = f"{base(ctx)}/api/v1/oauth/{spec.id}/callback"
                if isinstance(found, ProviderError):
                    entries.append({"id": spec.id, "name": spec.name, "url": None,
                                    "error": found.message})
                    continue
                entries.append({"id": spec.id, "name": spec.name,
                                "url": flow.authorize_url(spec, target, callback, found)})
            if list:
                return entries
            return {e["name"]: e["url"] for e in entries if e["url"]}

        def callback(ctx: Any, provider: str, state: str | None, code: str | None,
                     error: str | None) -> Redirect:
            spec = flow.get(provider)
            if spec is None:
                raise RouteError(f'Unknown provider "{provider[:64]}".', 400)
            try:
                claimed = flow.claim_state(provider, state)
            except StateError as exc:
                log.info("oauth %s: callback refused: %s", provider, exc)
                raise RouteError(str(exc), 403) from None
            redirect = claimed["redirect"]

            def refuse(message: str, **extra: str) -> Redirect:
                return Redirect(with_params(redirect, oauthError=message, **extra))

            if error:
                return refuse(f"{spec.name} did not sign you in ({str(error)[:100]}).")
            try:
                profile, token = flow.complete(spec, code or "", claimed)
            except ProviderError as exc:
                return refuse(exc.message)
            if info.events.trigger(BEFORE, {"provider": provider, "token": token}) \
                    .default_prevented:
                return Redirect(redirect)
            try:
                user = accounts.account_for(profile)
            except CoreError as exc:
                log.info("oauth %s: no account for the sign-in: %s", provider, exc)
                return refuse(exc.message)
            try:
                services.auth.check_status(user, services.settings)
            except AuthenticationError as exc:
                return refuse(exc.message, error=str(exc.extra or "denied"))
            if info.events.trigger(AFTER, {"provider": provider, "token": token,
                                           "user": user}).default_prevented:
                return Redirect(redirect)
            login = services.auth.login_token(user)
            tokens.update(login["_id"], {"$set": {"oauthProvider": provider}})
            log.info("login ok: %s (oauth %s)", user["login"], provider)
            return Redirect(with_params(redirect, girderToken=login["_id"]), token=login)

        def account(ctx: Any) -> dict[str, Any]:
            user = services.users.me(ctx.principal)
            names = {p.id: p.name for p in flow.providers().values()}
            return {"hasPassword": bool(user.get("salt")),
                    "providers": [{"id": p, "name": names.get(p, p)}
                                  for p in accounts.links(user)]}

        def unlink(ctx: Any, provider: str, user_id: str | None) -> dict[str, Any]:
            if user_id:
                if not ObjectId.is_valid(user_id):
                    raise ValidationError("Invalid user id.", field="userId")
                user = services.users.get(ctx.principal, ObjectId(user_id))
            else:
                user = services.users.me(ctx.principal)
            accounts.unlink(ctx.principal, user, provider)
            return {"message": f"Unlinked {provider}."}

        path = RouteParam("provider", required=True, location="path",
                          description="The provider id.")
        info.add_route("GET", "oauth/provider", list_providers, scope=USER_INFO_READ,
                       summary="Get the list of enabled OAuth2 providers and their URLs.",
                       description="Sign in through OAuth2 / OpenID Connect providers.",
                       params=[RouteParam("redirect", required=True, description=(
                           "Where the user should be redirected upon completion of the "
                           "OAuth2 flow (a page of this site).")),
                           RouteParam("list", "boolean", default=False, description=(
                               "Whether to return the providers as an ordered list."))])
        info.add_route("GET", "oauth/:provider/callback", callback, scope=USER_INFO_READ,
                       summary="Callback called by OAuth providers.",
                       params=[path, RouteParam("state", description="Opaque state string."),
                               RouteParam("code", description="Authorization code."),
                               RouteParam("error", description="Error from the provider.")])
        info.add_route("GET", "oauth/account", account, scope=USER_INFO_READ, access="user",
                       summary="How the current user signs in: password, linked providers.")
        info.add_route("DELETE", "oauth/:provider/link", unlink, scope=USER_AUTH,
                       access="user", summary="Unlink a provider from an account; the "
                       "sessions it gave end at once.",
                       params=[path, RouteParam("userId", description=(
                           "The account (administrators only; default: yours)."))])
        services.auth.grants.gates.append(identity_gate)
