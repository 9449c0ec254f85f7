"""kb: a self-service knowledge base for customer-support teams."""

__version__ = "0.1.0"
