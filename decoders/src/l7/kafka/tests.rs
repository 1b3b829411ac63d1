//! Apache Kafka wire protocol: byte-array tests of parser and session.
