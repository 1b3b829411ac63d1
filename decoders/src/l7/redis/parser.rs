//! Redis RESP2/RESP3: message parsing over borrowed bytes.
