"""The portal's contact form: a question answered from the articles when kb is sure, else sent on.

Request-free (STYLE.md 11): the portal pages call these functions, never the other way round.
Modules: form (checking what a customer typed), limits (per address and per client, across
workers), asking (suggestions, the decision, the record in the mail ledger, the customer's
"Does this answer your question?"), sending (the "contact.send" job: the question to the support
mailbox by SMTP) and marker (the signed header that tells the mail worker a copy is not a new
question).
"""
