//! Redis RESP2/RESP3: byte-array tests of parser and session.
