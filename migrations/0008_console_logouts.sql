-- Console sessions ended by a logout: a SHA-256 of the session's cookie value (never the value, a credential) and
-- when it would have expired. A copied cookie is refused after its logout; rows are pruned once past that expiry.
CREATE TABLE console_logouts (
  session TEXT PRIMARY KEY,
  expires_at INTEGER NOT NULL
);
