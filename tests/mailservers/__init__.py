"""Real mail servers for the auto-responder tests (see ../shared/TEST-SERVERS.md); a pytest plugin.

- ``pymap_server``: pymap's in-memory IMAP server on its own asyncio loop in a thread (per test).
- ``dovecot_server``: a Dovecot IMAP server (``dovecot -F``) for the whole session, and
  ``dovecot_account``: a fresh user of it per test; skipped loudly when Dovecot is not installed.
  IMAPS and STARTTLS use a self-signed certificate (``account.ssl_context()``); XOAUTH2 works with
  ``account.oauth2_token``, checked by Dovecot against a local token introspection endpoint.
  pymap also offers XOAUTH2 with ``PymapServer(oauth2_token=...)`` (a test-side token check).
- ``smtp_sink`` / ``smtp_sink_factory``: aiosmtpd servers collecting what they receive (per test).
- ``tls_certificate``: a self-signed certificate for 127.0.0.1/localhost (per session).

The IMAP helpers share one small API (host, port, user, password, settings(), append, uids,
flags, fetch_raw, folders, client()), so tests can be parametrised over pymap and Dovecot.
"""

from tests.mailservers.dovecot import DovecotAccount, DovecotServer, dovecot_account, dovecot_server
from tests.mailservers.imap import ImapHelper, PymapServer, pymap_server
from tests.mailservers.smtp import ReceivedMail, SmtpSink, smtp_sink, smtp_sink_factory
from tests.mailservers.tls import SelfSignedCertificate, make_certificate, tls_certificate

__all__ = ["DovecotAccount", "DovecotServer", "ImapHelper", "PymapServer", "ReceivedMail", "SelfSignedCertificate",
           "SmtpSink", "dovecot_account", "dovecot_server", "make_certificate", "pymap_server", "smtp_sink",
           "smtp_sink_factory", "tls_certificate"]
