"""Joist: a data management platform in the spirit of Girder."""

from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).parent
# The repository keeps the design card's top level (core/, gateways/, admin/);
# installed, they live under the ``joist`` namespace so nothing generic lands in
# site-packages.
TOP = {"joist.core": "core", "joist.gateways": "gateways", "joist.admin": "admin"}


def _packages() -> list[str]:
    found: list[str] = []
    for name, folder in TOP.items():
        for init in sorted((ROOT / folder).rglob("__init__.py")):
            rel = init.parent.relative_to(ROOT / folder)
            found.append(".".join([name, *rel.parts]))
    return found


setup(
    name="joist",
    version="0.1.0",
    description="Data management platform: REST (Girder-compatible), WebDAV, SFTP and FUSE "
                "over one core of users, groups, collections, folders, items and files.",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=_packages(),
    package_dir=TOP,
    package_data={"joist.gateways.http": ["static/swagger-ui/*", "web/*"],
                  "joist.core.mail": ["templates/*.txt"]},
    install_requires=[
        "pymongo>=4.6",        # bson.ObjectId everywhere; the MongoDB engine
        "bcrypt>=4.1",
        "pyotp>=2.9",
        "cheroot>=11.0,<12",  # tested range: see admin/cheroot_internals.py
        "wsgidav>=4.3",
        "paramiko>=5.1,<6",   # tested range: see gateways/sftp/paramiko_internals.py
        "cryptography>=3.3",  # SFTP host key generation (also a paramiko dependency)
        "mfusepy>=3.1.1,<3.2",  # tested range: see gateways/fuse/mfusepy_internals.py
        "diskcache>=5.6",      # the FUSE mount's chunk cache
        "defusedxml>=0.7",
        "orjson>=3.9",         # the SQLite engine's document decoding
        "ldap3>=2.9",          # LDAP login (pure Python; python-ldap needs C builds)
        "segno>=1.6",          # the web client's TOTP QR code, rendered as SVG
        "authlib>=1.3",        # the oauth plugin's OAuth2 client (authorization code, PKCE)
        "joserfc>=1.0",        # ... and its id_token validation (JWKS, iss, aud, exp, nonce)
        "requests>=2.31",      # the HTTP client Authlib's OAuth2Session is built on
    ],
    extras_require={
        "mongo": [],          # pymongo is already required
        "s3": ["boto3>=1.34"],
        "celery": ["celery[redis]>=5.3"],  # jobs.runner = celery (joist worker)
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "requests>=2.31",
            "girder-client==5.0.21",
            "openapi-spec-validator>=0.7",  # checks the REST API description
            "mongomock>=4.1",
            "moto[server]>=5.0",
            "boto3>=1.34",
            "hypothesis>=6.100",
            "aiosmtpd>=1.4",        # a real SMTP server for the mail tests
            "ruff>=0.5",
            "selenium>=4.20",      # drives Debian's chromium + chromium-driver (tests/web)
            "mypy>=1.10",
            "celery[redis]>=5.3",  # the Celery job runner's tests (a real worker and Redis)
        ],
    },
    entry_points={
        "console_scripts": ["joist = joist.admin.cli:main"],
        # Plugins shipped with Joist load exactly as third-party ones do.
        "joist.plugins": [
            "autojoin = joist.core.builtin_plugins.autojoin:AutojoinPlugin",
            "jobs = joist.core.builtin_plugins.jobs:JobsPlugin",
            "hashsum_download = joist.core.builtin_plugins.hashsum_download:HashsumDownloadPlugin",
            "user_quota = joist.core.builtin_plugins.user_quota:UserQuotaPlugin",
            "authorized_upload = "
            "joist.core.builtin_plugins.authorized_upload:AuthorizedUploadPlugin",
            "oauth = joist.core.builtin_plugins.oauth:OAuthPlugin",
        ],
    },
)
