//! Readable identifiers: `INC-20261128-1`, `REQ-20261128-3`, `RUN-20261128-2`.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! readable_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            /// `PREFIX-YYYYMMDD-N` for the given UTC day and per-day sequence number.
            pub fn for_day(day: chrono::NaiveDate, seq: i64) -> Self {
                Self(format!("{}-{}-{}", $prefix, day.format("%Y%m%d"), seq))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

readable_id!(IncidentId, "INC");
readable_id!(RequestId, "REQ");
readable_id!(RunId, "RUN");
