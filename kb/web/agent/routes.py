"""Agent routes, split by concern; importing the modules registers their views on ``bp``."""

from kb.web.agent import admin, auth, editor, history, media  # noqa: F401
from kb.web.agent import mail  # noqa: E402,F401  (the auto-responder's decisions)
from kb.web.agent import followup_report  # noqa: E402,F401  (the follow-up measures)
from kb.web.agent import customers  # noqa: E402,F401  (customers and their history)
from kb.web.agent import followups  # noqa: E402,F401  (follow-up queue and cases)
from kb.web.agent import followup_actions  # noqa: E402,F401  (the case page's POST actions)
from kb.web.agent import recovery_admin  # noqa: E402,F401  (gesture types and bounds, admins)
from kb.web.agent import followup_offers  # noqa: E402,F401  (the case page's service-recovery actions)
from kb.web.agent import recovery_approvals  # noqa: E402,F401  (service-recovery approvals)
from kb.web.agent import recovery  # noqa: E402,F401  (what the recovery ledger says, and its CSV)
from kb.web.agent import gaps  # noqa: E402,F401  (content gaps from email)
from kb.web.agent import mail_answer  # noqa: E402,F401  (answer an email with articles, draft an article from it)
from kb.web.agent import article_examples  # noqa: E402,F401  (an article's example questions in the editor)
from kb.web.agent import synonyms  # noqa: E402,F401  (synonym sets per language, admins)
from kb.web.agent import insights_search  # noqa: E402,F401  (the search report)
