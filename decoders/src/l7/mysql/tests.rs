//! MySQL client/server protocol: byte-array tests of parser and session.
