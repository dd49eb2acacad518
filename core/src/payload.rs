//! The lock file's JSON payload: written whole, parsed leniently (SPEC §1).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

use serde_json::{Map, Value};

/// What a lock file says about its holder. Every field is optional on read: an ill-typed field
/// is dropped, an unparseable or empty file has no payload at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockPayload {
    pub pid: Option<u32>,
    /// ISO-8601 wall time, as written.
    pub created_at: Option<String>,
    pub starttime: Option<u64>,
    pub max_hold_ms: Option<u64>,
}

impl LockPayload {
    pub fn new(pid: u32, created_wall_ms: i64, starttime: Option<u64>, max_hold_ms: u64) -> Self {
        LockPayload {
            pid: Some(pid),
            created_at: Some(format_iso8601(created_wall_ms)),
            starttime,
            max_hold_ms: Some(max_hold_ms),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut map = Map::new();
        if let Some(pid) = self.pid {
            map.insert("pid".into(), pid.into());
        }
        if let Some(created) = &self.created_at {
            map.insert("createdAt".into(), created.clone().into());
        }
        if let Some(st) = self.starttime {
            map.insert("starttime".into(), st.into());
        }
        if let Some(max) = self.max_hold_ms {
            map.insert("maxHoldMs".into(), max.into());
        }
        serde_json::to_vec(&Value::Object(map)).expect("a JSON map always serializes")
    }

    /// `None` for empty or unparseable bytes, or JSON that is not an object.
    pub fn parse(bytes: &[u8]) -> Option<LockPayload> {
        let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
            return None;
        };
        let positive = |key: &str| map.get(key).and_then(Value::as_u64).filter(|&v| v > 0);
        Some(LockPayload {
            pid: positive("pid").and_then(|v| u32::try_from(v).ok()),
            created_at: map.get("createdAt").and_then(Value::as_str).map(str::to_owned),
            starttime: map.get("starttime").and_then(Value::as_u64),
            max_hold_ms: positive("maxHoldMs"),
        })
    }

    /// `createdAt` in Unix milliseconds, when present and valid.
    pub fn created_wall_ms(&self) -> Option<i64> {
        self.created_at.as_deref().and_then(parse_iso8601)
    }
}

/// `2026-11-25T19:07:45.123Z`.
pub fn format_iso8601(wall_ms: i64) -> String {
    let t = DateTime::<Utc>::from_timestamp_millis(wall_ms.max(0)).unwrap_or_default();
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Unix milliseconds of a `createdAt`: any RFC 3339 date-time (`Z`/`z` or an offset, `T`/`t`
/// or a space, any number of fraction digits), as `Date.parse` reads them; a time with no
/// offset is taken as UTC (what the lock wrote before offsets were read). `None` otherwise,
/// or before the epoch.
pub fn parse_iso8601(s: &str) -> Option<i64> {
    let ms = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.timestamp_millis(),
        Err(_) => NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
            .ok()?
            .and_utc()
            .timestamp_millis(),
    };
    (ms >= 0).then_some(ms)
}
