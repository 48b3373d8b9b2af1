//! The tables whose rows a dump holds, and their row counts through a [`Session`].

use std::collections::BTreeMap;

use super::session::Session;

/// SQL listing the tables whose rows a dump holds: ordinary tables and partitions outside the
/// system schemas, not those an extension owns. Names come back hex-encoded (any character is
/// allowed in a name), as `schema.table` and as a quoted identifier.
pub const TABLES_SQL: &str = "SELECT encode(convert_to(n.nspname || '.' || c.relname, 'UTF8'), 'hex'), \
     encode(convert_to(quote_ident(n.nspname) || '.' || quote_ident(c.relname), 'UTF8'), 'hex') \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
     AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
     AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass \
     AND d.objid = c.oid AND d.deptype = 'e') ORDER BY 1";

fn unhex(s: &str) -> Result<String, String> {
    let bytes = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).unwrap_or("zz"), 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|e| format!("bad name from the server: {e}"))?;
    String::from_utf8(bytes).map_err(|e| format!("bad name from the server: {e}"))
}

/// Rows per table (`schema.table`) of the database `session` is connected to, in its current
/// transaction's snapshot. `only`, when not empty, limits the count to those tables.
///
/// # Errors
/// A failed query.
pub fn count_rows(session: &mut Session, only: &[String]) -> Result<BTreeMap<String, u64>, String> {
    let mut tables = Vec::new();
    for row in session.query(TABLES_SQL)? {
        let [name, quoted] = row.as_slice() else {
            return Err("unexpected answer listing tables".into());
        };
        let name = unhex(name)?;
        if only.is_empty() || only.iter().any(|t| table_matches(t, &name)) {
            tables.push((name, unhex(quoted)?));
        }
    }
    let mut counts = BTreeMap::new();
    // A few hundred tables per statement keeps each query short.
    for batch in tables.chunks(200) {
        let sql = batch
            .iter()
            .enumerate()
            .map(|(i, (_, quoted))| format!("SELECT {i}, count(*) FROM {quoted}"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        for row in session.query(&sql)? {
            let (Some(i), Some(n)) = (
                row.first().and_then(|v| v.parse::<usize>().ok()),
                row.get(1).and_then(|v| v.parse::<u64>().ok()),
            ) else {
                return Err("unexpected answer counting rows".into());
            };
            if let Some((name, _)) = batch.get(i) {
                counts.insert(name.clone(), n);
            }
        }
    }
    Ok(counts)
}

/// Whether `wanted` (`table` or `schema.table`, as given to `--table`) names `name`
/// (`schema.table`). A bare name matches in any schema.
#[must_use]
pub fn table_matches(wanted: &str, name: &str) -> bool {
    wanted == name || name.split_once('.').is_some_and(|(_, t)| t == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn tables_match_with_or_without_schema() {
        assert!(table_matches("orders", "public.orders"));
        assert!(table_matches("public.orders", "public.orders"));
        assert!(!table_matches("shop.orders", "public.orders"));
        assert!(!table_matches("order", "public.orders"));
    }
}
