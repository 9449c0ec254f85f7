"""Running kb on several hosts: workers' heartbeats, readiness checks and `kb doctor`'s checks.

Request-free and free of kb.web and kb.cli (STYLE.md 11): the web's /healthz and /readyz
(kb/web/health.py) and the `kb doctor` command (kb/doctor_command.py) are thin wrappers over it.
"""
