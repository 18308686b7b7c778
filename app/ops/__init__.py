"""Operations: metrics, structured logs, redaction, retention, backoff and health checks."""
