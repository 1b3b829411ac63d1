//! PostgreSQL frontend/backend protocol v3: byte-array tests of parser and session.
