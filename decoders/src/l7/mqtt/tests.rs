//! MQTT 3.1.1 and 5: byte-array tests of parser and session.
