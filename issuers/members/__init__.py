"""Members: what a partner's CRM shares about its card holders, and enrollment codes."""
