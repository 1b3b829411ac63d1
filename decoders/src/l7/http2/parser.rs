//! HTTP/2 (RFC 9113) with HPACK (RFC 7541), and gRPC on it: message parsing over borrowed bytes.
