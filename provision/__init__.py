"""Deploy-time helpers for the SAM stack."""
