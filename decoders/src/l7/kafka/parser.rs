//! Apache Kafka wire protocol: message parsing over borrowed bytes.
