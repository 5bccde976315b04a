"""The common reads (GET and HEAD of a file, PROPFIND) answered without
wsgidav's request stack.

A tree walk is one PROPFIND per folder and one GET per file: most of a
GET's server time went to the layers around the answer (path re-encoding,
five middleware generators, the authenticator's header parsing, the request
server's dispatch), not to the answer. ``FastPath`` does what those layers do
for these requests, in the same order and with the same functions (wsgidav's
path rules, our domain controller, ``handle_get`` / ``handle_propfind``, the
error middleware's formatting), and hands everything else to wsgidav:
other methods, conditional requests, request bodies on GET, digest or missing
credentials that end in a challenge, collections, paths that do not resolve.
Handing over happens before anything is read or sent, with the environ
untouched, so wsgidav then answers exactly as it always did.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterable
from typing import Any

from wsgidav import util
from wsgidav.dav_error import DAVError
from wsgidav.wsgidav_app import WsgiDAVApp

from .auth import JoistAuthenticator, JoistDomainController
from .download import answer
from .errors import REALM, error_answer, guarded
from .propfind import CONDITIONAL

StartResponse = Callable[..., Any]
METHODS = frozenset({"GET", "HEAD", "PROPFIND"})
_SCHEME = re.compile(r"([\w]+)")  # wsgidav's reading of the Authorization scheme


def _find(app: Any, kind: type) -> Any:
    """The instance of ``kind`` in wsgidav's middleware chain."""
    while app is not None and not isinstance(app, kind):
        app = getattr(app, "next_app", None)
    if app is None:
        raise RuntimeError(f"{kind.__name__} is not in the WebDAV stack")
    return app


class FastPath:
    """Called by ``RequestGuard`` before wsgidav; ``enabled`` False sends
    everything to wsgidav (the tests compare the two)."""

    def __init__(self, dav: WsgiDAVApp) -> None:
        self.dav = dav
        self.config = dav.config
        self.provider = dav.provider_map["/"]
        self.authenticator: JoistAuthenticator = _find(dav.application, JoistAuthenticator)
        self.dc: JoistDomainController = self.authenticator.domain_controller
        self.re_encode = dav.re_encode_path_info
        # The configuration this module mirrors: anything else, wsgidav answers.
        self.enabled = (self.provider is not None and not dav.unquote_path_info
                        and not self.authenticator.trusted_auth_header
                        and not self.authenticator.win_accept_anonymous_options)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes] | None:
        """The answer, or None: wsgidav answers (``environ`` is untouched)."""
        method = environ["REQUEST_METHOD"]
        if method not in METHODS or not self.enabled:
            return None
        if "logout" in environ.get("QUERY_STRING", "") or \
                "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower():
            return None
        if any(h in environ for h in CONDITIONAL):
            return None  # wsgidav evaluates If and If-* headers
        if method != "PROPFIND" and environ.get("CONTENT_LENGTH") not in (None, "", "0"):
            return None
        env = dict(environ)
        try:
            path = env["PATH_INFO"]
            if self.re_encode:
                path = util.re_encode_wsgi(path)
            env["PATH_INFO"] = path = util.normalize_path(path)
        except (UnicodeError, DAVError):
            return None
        if self.dav.resolve_provider(path) != ("/", self.provider):
            return None  # wsgidav's own share (the directory browser's assets)
        env["wsgidav.app"] = self.dav
        env["wsgidav.config"] = self.config
        env["wsgidav.provider"] = self.provider
        env["wsgidav.verbose"] = self.dav.verbose
        try:
            refused = self._authenticate(env, start_response)
            if refused is not None:
                return refused
            env["wsgidav.user_name"] = env.get("wsgidav.auth.user_name", "anonymous")
            depth = env.get("HTTP_DEPTH")
            if depth is not None:
                env["HTTP_DEPTH"] = depth.lower()
            if method == "PROPFIND":
                return guarded(env, start_response, self._propfind)
            if (depth or "0") != "0":
                return None
            opened = self.provider.open_file(env["PATH_INFO"], env)
            if opened is None:
                return None  # a directory page or a 404: wsgidav's
        except Exception as exc:
            return error_answer(env, start_response, exc)
        resource, reader = opened

        def file_answer(environ: dict[str, Any], start_response: StartResponse
                        ) -> Iterable[bytes]:
            return answer(environ, start_response, resource, reader)

        # The caller iterates at once (RequestGuard): the reader is closed by
        # the body, or by ``answer`` on failure.
        return guarded(env, start_response, file_answer)

    def _authenticate(self, env: dict[str, Any], start_response: StartResponse
                      ) -> Iterable[bytes] | None:
        """wsgidav's ``HTTPAuthenticator`` for Basic, tokens and anonymous
        access: None when the request may go on, else the 401."""
        env["wsgidav.auth.realm"] = REALM
        env["wsgidav.auth.user_name"] = ""
        env["wsgidav.auth.roles"] = None
        env["wsgidav.auth.permissions"] = None
        if not self.dc.require_authentication(REALM, env):
            return None  # a token, or anonymous access
        header = env.get("HTTP_AUTHORIZATION", "")
        scheme = _SCHEME.match(header)
        if scheme is None or scheme.group(1).lower() != "basic":
            # No credentials, Digest or an unknown scheme: a challenge, as
            # wsgidav sends it.
            return self.authenticator.send_basic_auth_response(env, start_response)
        try:
            raw = base64.b64decode(header.split(None, 1)[1].strip(), validate=True)
            user_name, password = raw.decode("utf-8").split(":", 1)
        except (IndexError, ValueError, binascii.Error, UnicodeDecodeError):
            return self.authenticator.send_basic_auth_response(env, start_response)
        if not self.dc.basic_auth_user(REALM, user_name, password, env):
            return self.authenticator.send_basic_auth_response(env, start_response)
        return None

    def _propfind(self, env: dict[str, Any], start_response: StartResponse
                  ) -> Iterable[bytes]:
        return self.provider.custom_request_handler(  # type: ignore[no-any-return]
            env, start_response, self._no_default)

    @staticmethod
    def _no_default(environ: dict[str, Any], start_response: StartResponse) -> Any:
        raise AssertionError("a PROPFIND without conditions is ours")
