//! MySQL client/server protocol: message parsing over borrowed bytes.
