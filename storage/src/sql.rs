//! Small helpers both SQL backends use to build parameterised statements.

use crate::read::{AuditCursor, AuditFilter, PassFilter};

/// A value for one `?` of a statement built here, bound by each backend its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqlValue {
    /// A text column.
    Text(String),
    /// A signed integer column.
    Int(i64),
    /// An unsigned integer column (an audit `seq`).
    UInt(u64),
}

/// The conditions of one page of the audit listing, to follow `WHERE 1`: only those the
/// filter asks for (so an index on the time order serves it), then the keyset condition
/// that starts the page below `after` in the order `at_ms DESC, node_id DESC, seq DESC`.
/// Returns the SQL and the values for its `?`s, in order. Column names are fixed here;
/// every value is bound, never spliced.
pub fn audit_page_conditions(
    filter: &AuditFilter,
    after: Option<&AuditCursor>,
) -> (String, Vec<SqlValue>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    for (column, value) in [
        ("case_id", &filter.case_id),
        ("user", &filter.user),
        ("kind", &filter.kind),
    ] {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {column} = ?"));
            values.push(SqlValue::Text(value.clone()));
        }
    }
    if let Some(from_ms) = filter.from_ms {
        sql.push_str(" AND at_ms >= ?");
        values.push(SqlValue::Int(from_ms));
    }
    if let Some(to_ms) = filter.to_ms {
        sql.push_str(" AND at_ms < ?");
        values.push(SqlValue::Int(to_ms));
    }
    if let Some(cursor) = after {
        sql.push_str(" AND at_ms <= ? AND (at_ms < ? OR node_id < ? OR (node_id = ? AND seq < ?))");
        values.extend([
            SqlValue::Int(cursor.at_ms),
            SqlValue::Int(cursor.at_ms),
            SqlValue::Text(cursor.node_id.clone()),
            SqlValue::Text(cursor.node_id.clone()),
            SqlValue::UInt(cursor.seq),
        ]);
    }
    (sql, values)
}

/// The conditions of a passes filter, each ` AND <column> = ?`, only those it sets, and the
/// values for their `?`s in order. `column` gives the SQL expression of a column name
/// (a backend reading an older layout may put a default in place of a missing column).
pub fn pass_filter_conditions(
    filter: &PassFilter,
    column: impl Fn(&str) -> String,
) -> (String, Vec<SqlValue>) {
    let mut sql = String::new();
    let mut values = Vec::new();
    for (name, code) in [
        ("object_class", filter.object_class.map(|c| c.code())),
        ("plate_color", filter.plate_color),
        ("vehicle_color", filter.vehicle_color),
        ("vehicle_type", filter.vehicle_type),
        ("direction", filter.direction),
    ] {
        if let Some(code) = code {
            sql.push_str(&format!(" AND {} = ?", column(name)));
            values.push(SqlValue::Int(i64::from(code)));
        }
    }
    if let Some(brand) = &filter.vehicle_brand {
        sql.push_str(&format!(" AND {} = ?", column("vehicle_brand")));
        values.push(SqlValue::Text(brand.clone()));
    }
    (sql, values)
}

/// `?, ?, ?` for `n` values bound one by one.
pub fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// The smallest string greater than every string starting with `prefix`: with `prefix`
/// itself, the key range a `LIKE 'prefix%'` search may read.
pub fn prefix_end(prefix: &str) -> String {
    let mut end = prefix.to_string();
    end.push(char::MAX);
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_prefix_range() {
        assert_eq!(placeholders(3), "?, ?, ?");
        let end = prefix_end("粤S1");
        assert!(end.as_str() > "粤S1ZZZZZ");
        assert!(end.as_str() < "粤S2");
    }

    #[test]
    fn audit_conditions_bind_every_value_in_order() {
        let (sql, values) = audit_page_conditions(&AuditFilter::default(), None);
        assert_eq!((sql.as_str(), values.len()), ("", 0));
        let filter = AuditFilter {
            user: Some("ivy' OR 1=1 --".into()),
            to_ms: Some(9),
            ..AuditFilter::default()
        };
        let cursor = AuditCursor {
            at_ms: 5,
            node_id: "q/1".into(),
            seq: 7,
        };
        let (sql, values) = audit_page_conditions(&filter, Some(&cursor));
        assert_eq!(sql.matches('?').count(), values.len());
        assert!(!sql.contains("ivy"), "values are bound, never spliced");
        assert_eq!(values[0], SqlValue::Text("ivy' OR 1=1 --".into()));
        assert_eq!(values[1], SqlValue::Int(9));
        assert_eq!(values.last(), Some(&SqlValue::UInt(7)));
    }
}
