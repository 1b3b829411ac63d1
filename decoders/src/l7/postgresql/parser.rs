//! PostgreSQL frontend/backend protocol v3: message parsing over borrowed bytes.
