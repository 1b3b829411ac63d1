//! Apache Kafka wire protocol (<https://kafka.apache.org/protocol>): pure
//! functions from a message's bytes to borrowed values. No state, no
//! allocation, no panics.
//!
//! Every message is a 4-byte big-endian size and that many bytes
//! ("Common Request and Response Structure"). A request starts with its
//! header: `api_key` INT16, `api_version` INT16, `correlation_id` INT32,
//! `client_id` NULLABLE_STRING (header v1), followed in flexible versions
//! by TAG_BUFFER (header v2). A response starts with `correlation_id`,
//! followed by TAG_BUFFER in flexible versions (header v1) except for
//! ApiVersions, whose response header is always v0 (KIP-511).
//!
//! Flexible versions (KIP-482) write arrays and strings in "compact"
//! form: an unsigned varint of length + 1. The functions here take the
//! bytes after the size field, possibly only the first part of a large
//! message: anything that runs past the end is [`ParseError::Truncated`].

/// Why bytes are not (the start of) a Kafka message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParseError {
    /// A field runs past the end of the bytes.
    Truncated,
    /// An impossible value: negative length, varint longer than 5 bytes,
    /// unknown API key or version.
    Invalid,
}

/// The highest API key named in [`api_name`].
pub const MAX_API_KEY: i16 = 74;
/// Highest api_version accepted in a request header (the newest APIs are
/// at 17 for Fetch and 12 for Produce as of Kafka 4.0).
pub const MAX_API_VERSION: i16 = 30;

/// The borrowing reader of a message.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    #[must_use]
    pub fn new(b: &'a [u8]) -> Self {
        Reader { b, pos: 0 }
    }

    /// Bytes read so far.
    #[must_use]
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], ParseError> {
        let end = self.pos.checked_add(n).ok_or(ParseError::Invalid)?;
        let s = self.b.get(self.pos..end).ok_or(ParseError::Truncated)?;
        self.pos = end;
        Ok(s)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), ParseError> {
        self.bytes(n).map(|_| ())
    }

    pub fn i8(&mut self) -> Result<i8, ParseError> {
        match self.bytes(1)? {
            &[a] => Ok(i8::from_be_bytes([a])),
            _ => Err(ParseError::Truncated),
        }
    }

    pub fn i16(&mut self) -> Result<i16, ParseError> {
        match self.bytes(2)? {
            &[a, b] => Ok(i16::from_be_bytes([a, b])),
            _ => Err(ParseError::Truncated),
        }
    }

    pub fn i32(&mut self) -> Result<i32, ParseError> {
        match self.bytes(4)? {
            &[a, b, c, d] => Ok(i32::from_be_bytes([a, b, c, d])),
            _ => Err(ParseError::Truncated),
        }
    }

    /// UNSIGNED_VARINT: 7 bits a byte, least significant group first, at
    /// most 5 bytes for 32 bits.
    pub fn uvarint(&mut self) -> Result<u32, ParseError> {
        let mut v: u32 = 0;
        for i in 0..5 {
            let b = self.bytes(1)?.first().copied().ok_or(ParseError::Truncated)?;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ParseError::Invalid)
    }

    /// STRING / NULLABLE_STRING: INT16 length (-1 is null), or in compact
    /// form an unsigned varint of length + 1 (0 is null).
    pub fn string(&mut self, compact: bool) -> Result<Option<&'a [u8]>, ParseError> {
        let len = if compact {
            match self.uvarint()? {
                0 => return Ok(None),
                n => (n - 1) as usize,
            }
        } else {
            match self.i16()? {
                -1 => return Ok(None),
                n if n < 0 => return Err(ParseError::Invalid),
                n => n as usize,
            }
        };
        self.bytes(len).map(Some)
    }

    /// ARRAY / COMPACT_ARRAY length; `None` for a null array.
    pub fn array_len(&mut self, compact: bool) -> Result<Option<u32>, ParseError> {
        if compact {
            Ok(self.uvarint()?.checked_sub(1))
        } else {
            match self.i32()? {
                -1 => Ok(None),
                n if n < 0 => Err(ParseError::Invalid),
                n => Ok(Some(n as u32)),
            }
        }
    }

    /// TAG_BUFFER: a count of tagged fields, each a tag, a size and that
    /// many bytes.
    pub fn skip_tags(&mut self) -> Result<(), ParseError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            let _tag = self.uvarint()?;
            let size = self.uvarint()?;
            self.skip(size as usize)?;
        }
        Ok(())
    }
}

/// A request header (v1 or v2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
    pub client_id: Option<&'a [u8]>,
    /// Offset of the request body in the bytes given.
    pub body: usize,
}

/// Parses a request header from the bytes after the size field. Rejects
/// negative API keys, versions outside `0..=MAX_API_VERSION` and negative
/// correlation ids (clients count up from 0 or 1). API keys newer than
/// [`MAX_API_KEY`] pass here (the probe does not accept them).
pub fn parse_request_header(msg: &[u8]) -> Result<RequestHeader<'_>, ParseError> {
    let mut r = Reader::new(msg);
    let api_key = r.i16()?;
    let api_version = r.i16()?;
    let correlation_id = r.i32()?;
    if api_key < 0 || !(0..=MAX_API_VERSION).contains(&api_version) || correlation_id < 0 {
        return Err(ParseError::Invalid);
    }
    // client_id stays a non-compact NULLABLE_STRING in header v2.
    let client_id = r.string(false)?;
    if is_flexible(api_key, api_version) {
        r.skip_tags()?;
    }
    Ok(RequestHeader { api_key, api_version, correlation_id, client_id, body: r.position() })
}

/// Offset of the response body after `correlation_id` (and the response
/// header's TAG_BUFFER in flexible versions other than ApiVersions).
pub fn response_body_offset(msg: &[u8], api_key: i16, api_version: i16) -> Result<usize, ParseError> {
    let mut r = Reader::new(msg);
    r.skip(4)?;
    if api_key != 18 && is_flexible(api_key, api_version) {
        r.skip_tags()?;
    }
    Ok(r.position())
}

/// Whether `api_version` of `api_key` is a flexible version (header v2,
/// compact strings and arrays), from the `flexibleVersions` of each
/// message's JSON schema in the Kafka sources.
#[must_use]
pub fn is_flexible(api_key: i16, api_version: i16) -> bool {
    let first = match api_key {
        0 => 9,
        1 => 12,
        2 => 6,
        3 => 9,
        4 => 4,
        5 => 2,
        6 => 6,
        7 => 3,
        8 => 8,
        9 => 6,
        10 => 3,
        11 => 6,
        12 => 4,
        13 => 4,
        14 => 4,
        15 => 5,
        16 => 3,
        17 => return false,
        18 => 3,
        19 => 5,
        20 => 4,
        21 => 2,
        22 => 2,
        23 => 4,
        24 => 3,
        25 => 3,
        26 => 3,
        27 => 1,
        28 => 3,
        29..=31 => 2,
        32 => 4,
        33..=43 => 2,
        44 => 1,
        47 => return false,
        48 | 49 => 1,
        53 | 54 => 1,
        _ => 0,
    };
    api_version >= first
}

/// The name of an API key as the protocol guide writes it.
#[must_use]
pub fn api_name(api_key: i16) -> Option<&'static str> {
    Some(match api_key {
        0 => "Produce",
        1 => "Fetch",
        2 => "ListOffsets",
        3 => "Metadata",
        4 => "LeaderAndIsr",
        5 => "StopReplica",
        6 => "UpdateMetadata",
        7 => "ControlledShutdown",
        8 => "OffsetCommit",
        9 => "OffsetFetch",
        10 => "FindCoordinator",
        11 => "JoinGroup",
        12 => "Heartbeat",
        13 => "LeaveGroup",
        14 => "SyncGroup",
        15 => "DescribeGroups",
        16 => "ListGroups",
        17 => "SaslHandshake",
        18 => "ApiVersions",
        19 => "CreateTopics",
        20 => "DeleteTopics",
        21 => "DeleteRecords",
        22 => "InitProducerId",
        23 => "OffsetForLeaderEpoch",
        24 => "AddPartitionsToTxn",
        25 => "AddOffsetsToTxn",
        26 => "EndTxn",
        27 => "WriteTxnMarkers",
        28 => "TxnOffsetCommit",
        29 => "DescribeAcls",
        30 => "CreateAcls",
        31 => "DeleteAcls",
        32 => "DescribeConfigs",
        33 => "AlterConfigs",
        34 => "AlterReplicaLogDirs",
        35 => "DescribeLogDirs",
        36 => "SaslAuthenticate",
        37 => "CreatePartitions",
        38 => "CreateDelegationToken",
        39 => "RenewDelegationToken",
        40 => "ExpireDelegationToken",
        41 => "DescribeDelegationToken",
        42 => "DeleteGroups",
        43 => "ElectLeaders",
        44 => "IncrementalAlterConfigs",
        45 => "AlterPartitionReassignments",
        46 => "ListPartitionReassignments",
        47 => "OffsetDelete",
        48 => "DescribeClientQuotas",
        49 => "AlterClientQuotas",
        50 => "DescribeUserScramCredentials",
        51 => "AlterUserScramCredentials",
        52 => "Vote",
        53 => "BeginQuorumEpoch",
        54 => "EndQuorumEpoch",
        55 => "DescribeQuorum",
        56 => "AlterPartition",
        57 => "UpdateFeatures",
        58 => "Envelope",
        59 => "FetchSnapshot",
        60 => "DescribeCluster",
        61 => "DescribeProducers",
        62 => "BrokerRegistration",
        63 => "BrokerHeartbeat",
        64 => "UnregisterBroker",
        65 => "DescribeTransactions",
        66 => "ListTransactions",
        67 => "AllocateProducerIds",
        68 => "ConsumerGroupHeartbeat",
        69 => "ConsumerGroupDescribe",
        70 => "ControllerRegistration",
        71 => "GetTelemetrySubscriptions",
        72 => "PushTelemetry",
        73 => "AssignReplicasToDirs",
        74 => "ListClientMetricsResources",
        _ => return None,
    })
}

/// What a Produce request says before its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Produce<'a> {
    /// 0: no response; 1: leader; -1: all in-sync replicas.
    pub acks: i16,
    /// Name of the first topic, when the bytes reach it.
    pub topic: Option<&'a [u8]>,
}

/// ProduceRequest: `transactional_id` (v3+), `acks`, `timeout_ms`, then
/// `topic_data` whose elements start with the topic `name`.
pub fn parse_produce(body: &[u8], version: i16) -> Result<Produce<'_>, ParseError> {
    let compact = is_flexible(0, version);
    let mut r = Reader::new(body);
    if version >= 3 {
        // Skipped unread: only its length matters.
        let _transactional_id = r.string(compact)?;
    }
    let acks = r.i16()?;
    let topic = (|| {
        r.skip(4)?; // timeout_ms
        match r.array_len(compact)? {
            Some(n) if n > 0 => r.string(compact),
            _ => Ok(None),
        }
    })()
    .ok()
    .flatten();
    Ok(Produce { acks, topic })
}

/// The first topic of a Fetch request. FetchRequest: `replica_id`
/// (v0..=14), `max_wait_ms`, `min_bytes`, `max_bytes` (v3+),
/// `isolation_level` (v4+), `session_id` and `session_epoch` (v7+), then
/// `topics`, each a `topic` name (v0..=12) or a `topic_id` UUID (v13+:
/// `None`).
pub fn parse_fetch_topic(body: &[u8], version: i16) -> Result<Option<&[u8]>, ParseError> {
    let compact = is_flexible(1, version);
    let mut r = Reader::new(body);
    let mut fixed = 8;
    if version <= 14 {
        fixed += 4;
    }
    if version >= 3 {
        fixed += 4;
    }
    if version >= 4 {
        fixed += 1;
    }
    if version >= 7 {
        fixed += 8;
    }
    r.skip(fixed)?;
    match r.array_len(compact)? {
        Some(n) if n > 0 && version <= 12 => r.string(compact),
        _ => Ok(None),
    }
}

/// The first topic of a Metadata request: `topics` is a (nullable from
/// v1) array whose elements are a `name` (v0..=9) or a `topic_id` UUID
/// then a nullable `name` (v10+).
pub fn parse_metadata_topic(body: &[u8], version: i16) -> Result<Option<&[u8]>, ParseError> {
    let compact = is_flexible(3, version);
    let mut r = Reader::new(body);
    match r.array_len(compact)? {
        Some(n) if n > 0 => {
            if version >= 10 {
                r.skip(16)?;
            }
            r.string(compact)
        }
        _ => Ok(None),
    }
}

/// The group id that starts the body of the consumer group requests
/// (OffsetCommit, OffsetFetch up to v7, JoinGroup, Heartbeat, LeaveGroup,
/// SyncGroup); `None` for other APIs.
pub fn parse_group_id(body: &[u8], api_key: i16, version: i16) -> Result<Option<&[u8]>, ParseError> {
    let applies = match api_key {
        8 | 11..=14 => true,
        9 => version <= 7,
        _ => false,
    };
    if !applies {
        return Ok(None);
    }
    Reader::new(body).string(is_flexible(api_key, version))
}

/// Where the first error code of a response body is, per API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorAt {
    /// The first field.
    First,
    /// After `throttle_time_ms`.
    AfterThrottle,
    /// In the first partition of the first topic: `[throttle]`, topics
    /// array, topic name (or a 16-byte id), partitions array,
    /// `partition_index` INT32, `error_code`.
    FirstPartition { throttle: bool, topic_id: bool },
}

fn error_at(api_key: i16, v: i16) -> Option<ErrorAt> {
    use ErrorAt::{AfterThrottle, First, FirstPartition};
    Some(match api_key {
        0 => FirstPartition { throttle: false, topic_id: false },
        1 if v >= 7 => AfterThrottle,
        1 => FirstPartition { throttle: v >= 1, topic_id: false },
        2 => FirstPartition { throttle: v >= 2, topic_id: false },
        8 => FirstPartition { throttle: v >= 3, topic_id: false },
        10 if v <= 3 => {
            if v >= 1 {
                AfterThrottle
            } else {
                First
            }
        }
        11 | 12 | 13 | 14 | 16 => {
            let since = if api_key == 11 { 2 } else { 1 };
            if v >= since {
                AfterThrottle
            } else {
                First
            }
        }
        17 | 18 | 36 => First,
        22 | 25 | 26 | 29 | 60 => AfterThrottle,
        _ => return None,
    })
}

/// The first error code of a response body, where this decoder knows its
/// place (see the module doc of the session); `Ok(None)` for other APIs.
pub fn parse_response_error(body: &[u8], api_key: i16, version: i16) -> Result<Option<i16>, ParseError> {
    let Some(at) = error_at(api_key, version) else { return Ok(None) };
    let compact = is_flexible(api_key, version);
    let mut r = Reader::new(body);
    match at {
        ErrorAt::First => r.i16().map(Some),
        ErrorAt::AfterThrottle => {
            r.skip(4)?;
            r.i16().map(Some)
        }
        ErrorAt::FirstPartition { throttle, topic_id } => {
            if throttle {
                r.skip(4)?;
            }
            if !matches!(r.array_len(compact)?, Some(n) if n > 0) {
                return Ok(None);
            }
            if topic_id || (api_key == 1 && version >= 13) {
                r.skip(16)?;
            } else {
                let _name = r.string(compact)?;
            }
            if !matches!(r.array_len(compact)?, Some(n) if n > 0) {
                return Ok(None);
            }
            r.skip(4)?;
            r.i16().map(Some)
        }
    }
}

/// The name of an error code as the protocol guide lists it.
#[must_use]
pub fn error_name(code: i16) -> Option<&'static str> {
    const NAMES: [&str; 117] = [
        "NONE",
        "OFFSET_OUT_OF_RANGE",
        "CORRUPT_MESSAGE",
        "UNKNOWN_TOPIC_OR_PARTITION",
        "INVALID_FETCH_SIZE",
        "LEADER_NOT_AVAILABLE",
        "NOT_LEADER_OR_FOLLOWER",
        "REQUEST_TIMED_OUT",
        "BROKER_NOT_AVAILABLE",
        "REPLICA_NOT_AVAILABLE",
        "MESSAGE_TOO_LARGE",
        "STALE_CONTROLLER_EPOCH",
        "OFFSET_METADATA_TOO_LARGE",
        "NETWORK_EXCEPTION",
        "COORDINATOR_LOAD_IN_PROGRESS",
        "COORDINATOR_NOT_AVAILABLE",
        "NOT_COORDINATOR",
        "INVALID_TOPIC_EXCEPTION",
        "RECORD_LIST_TOO_LARGE",
        "NOT_ENOUGH_REPLICAS",
        "NOT_ENOUGH_REPLICAS_AFTER_APPEND",
        "INVALID_REQUIRED_ACKS",
        "ILLEGAL_GENERATION",
        "INCONSISTENT_GROUP_PROTOCOL",
        "INVALID_GROUP_ID",
        "UNKNOWN_MEMBER_ID",
        "INVALID_SESSION_TIMEOUT",
        "REBALANCE_IN_PROGRESS",
        "INVALID_COMMIT_OFFSET_SIZE",
        "TOPIC_AUTHORIZATION_FAILED",
        "GROUP_AUTHORIZATION_FAILED",
        "CLUSTER_AUTHORIZATION_FAILED",
        "INVALID_TIMESTAMP",
        "UNSUPPORTED_SASL_MECHANISM",
        "ILLEGAL_SASL_STATE",
        "UNSUPPORTED_VERSION",
        "TOPIC_ALREADY_EXISTS",
        "INVALID_PARTITIONS",
        "INVALID_REPLICATION_FACTOR",
        "INVALID_REPLICA_ASSIGNMENT",
        "INVALID_CONFIG",
        "NOT_CONTROLLER",
        "INVALID_REQUEST",
        "UNSUPPORTED_FOR_MESSAGE_FORMAT",
        "POLICY_VIOLATION",
        "OUT_OF_ORDER_SEQUENCE_NUMBER",
        "DUPLICATE_SEQUENCE_NUMBER",
        "INVALID_PRODUCER_EPOCH",
        "INVALID_TXN_STATE",
        "INVALID_PRODUCER_ID_MAPPING",
        "INVALID_TRANSACTION_TIMEOUT",
        "CONCURRENT_TRANSACTIONS",
        "TRANSACTION_COORDINATOR_FENCED",
        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
        "SECURITY_DISABLED",
        "OPERATION_NOT_ATTEMPTED",
        "KAFKA_STORAGE_ERROR",
        "LOG_DIR_NOT_FOUND",
        "SASL_AUTHENTICATION_FAILED",
        "UNKNOWN_PRODUCER_ID",
        "REASSIGNMENT_IN_PROGRESS",
        "DELEGATION_TOKEN_AUTH_DISABLED",
        "DELEGATION_TOKEN_NOT_FOUND",
        "DELEGATION_TOKEN_OWNER_MISMATCH",
        "DELEGATION_TOKEN_REQUEST_NOT_ALLOWED",
        "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
        "DELEGATION_TOKEN_EXPIRED",
        "INVALID_PRINCIPAL_TYPE",
        "NON_EMPTY_GROUP",
        "GROUP_ID_NOT_FOUND",
        "FETCH_SESSION_ID_NOT_FOUND",
        "INVALID_FETCH_SESSION_EPOCH",
        "LISTENER_NOT_FOUND",
        "TOPIC_DELETION_DISABLED",
        "FENCED_LEADER_EPOCH",
        "UNKNOWN_LEADER_EPOCH",
        "UNSUPPORTED_COMPRESSION_TYPE",
        "STALE_BROKER_EPOCH",
        "OFFSET_NOT_AVAILABLE",
        "MEMBER_ID_REQUIRED",
        "PREFERRED_LEADER_NOT_AVAILABLE",
        "GROUP_MAX_SIZE_REACHED",
        "FENCED_INSTANCE_ID",
        "ELIGIBLE_LEADERS_NOT_AVAILABLE",
        "ELECTION_NOT_NEEDED",
        "NO_REASSIGNMENT_IN_PROGRESS",
        "GROUP_SUBSCRIBED_TO_TOPIC",
        "INVALID_RECORD",
        "UNSTABLE_OFFSET_COMMIT",
        "THROTTLING_QUOTA_EXCEEDED",
        "PRODUCER_FENCED",
        "RESOURCE_NOT_FOUND",
        "DUPLICATE_RESOURCE",
        "UNACCEPTABLE_CREDENTIAL",
        "INCONSISTENT_VOTER_SET",
        "INVALID_UPDATE_VERSION",
        "FEATURE_UPDATE_FAILED",
        "PRINCIPAL_DESERIALIZATION_FAILURE",
        "SNAPSHOT_NOT_FOUND",
        "POSITION_OUT_OF_RANGE",
        "UNKNOWN_TOPIC_ID",
        "DUPLICATE_BROKER_REGISTRATION",
        "BROKER_ID_NOT_REGISTERED",
        "INCONSISTENT_TOPIC_ID",
        "INCONSISTENT_CLUSTER_ID",
        "TRANSACTIONAL_ID_NOT_FOUND",
        "FETCH_SESSION_TOPIC_ID_ERROR",
        "INELIGIBLE_REPLICA",
        "NEW_LEADER_ELECTED",
        "OFFSET_MOVED_TO_TIERED_STORAGE",
        "FENCED_MEMBER_EPOCH",
        "UNRELEASED_INSTANCE_ID",
        "UNSUPPORTED_ASSIGNOR",
        "STALE_MEMBER_EPOCH",
        "MISMATCHED_ENDPOINT_TYPE",
        "UNSUPPORTED_ENDPOINT_TYPE",
        "UNKNOWN_CONTROLLER_ID",
    ];
    if code == -1 {
        return Some("UNKNOWN_SERVER_ERROR");
    }
    usize::try_from(code).ok().and_then(|i| NAMES.get(i).copied())
}
