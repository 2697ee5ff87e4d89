//! Conversions between stored text columns and the core's types, shared by both backends.

use erlmcp_handlers::Error;
use erlmcp_handlers::command::Role;
use std::collections::BTreeMap;

pub fn bad(column: &str, value: &str) -> Error {
    Error::Store(format!("unreadable value `{value}` in column {column}"))
}

/// `($1,$2,$3),($4,$5,$6)` for `rows` rows of `columns` values: a multi-row `VALUES` list (or,
/// with one column, `($1),($2)`, an `IN` list's items).
pub fn placeholders(rows: usize, columns: usize) -> String {
    let mut out = String::with_capacity(rows * columns * 5);
    for r in 0..rows {
        if r > 0 {
            out.push(',');
        }
        out.push('(');
        for c in 1..=columns {
            if c > 1 {
                out.push(',');
            }
            out.push('$');
            out.push_str(&(r * columns + c).to_string());
        }
        out.push(')');
    }
    out
}

pub fn roles_to_json(roles: &BTreeMap<Role, String>) -> String {
    let m: BTreeMap<&str, &str> = roles
        .iter()
        .map(|(r, u)| (r.as_str(), u.as_str()))
        .collect();
    serde_json::to_string(&m).unwrap_or_else(|_| "{}".into())
}

pub fn roles_from_json(s: &str) -> Result<BTreeMap<Role, String>, Error> {
    let m: BTreeMap<String, String> = serde_json::from_str(s).map_err(|_| bad("roles", s))?;
    m.into_iter()
        .map(|(k, v)| {
            Role::parse(&k)
                .map(|r| (r, v))
                .ok_or_else(|| bad("roles", s))
        })
        .collect()
}

/// A database error as a person reads it: the server's message without its source position,
/// and for connection failures the cause (refused, unknown host) rather than the wrapper.
pub fn plain_db_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(d) => d.message().to_string(),
        sqlx::Error::Io(io) => format!("{io}"),
        other => {
            let mut out = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                out.push_str(": ");
                out.push_str(&s.to_string());
                source = s.source();
            }
            out
        }
    }
}

/// Maps a database error to the core's, keeping the database's own message.
pub fn db(e: sqlx::Error) -> Error {
    match &e {
        sqlx::Error::Database(d) => Error::Store(d.message().to_string()),
        _ => Error::Store(e.to_string()),
    }
}

/// A unique-key collision, which id allocation retries.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

#[cfg(test)]
mod placeholder_tests {
    #[test]
    fn placeholders_number_every_value_once() {
        assert_eq!(super::placeholders(2, 3), "($1,$2,$3),($4,$5,$6)");
        assert_eq!(super::placeholders(3, 1), "($1),($2),($3)");
    }
}
