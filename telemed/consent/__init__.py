"""Consent before a consultation: the consent text in force for each kind of consultation (versioned),
and the patients' consent records (append-only: never updated or deleted, by the code or in SQL)."""
