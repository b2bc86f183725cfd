//! Statements the store runs, by path (`writer`: inside a group-commit batch; `direct`: outside it, where each write
//! is a transaction of its own), kind and table, counted from SeaORM's metric callback. `/metrics` shows them and
//! `purser bench` divides them by the purchases made.
use sea_orm::DatabaseConnection;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Counts by (path, kind), then by table. The callback runs for every statement, so counting one allocates nothing
/// once its table has been seen: the kind is a known word and the table is looked up by the statement's own text.
#[derive(Default, Debug)]
pub struct StatementCounts(Mutex<BTreeMap<(&'static str, &'static str), ByTable>>);

/// Statements of one path and kind, by table.
type ByTable = BTreeMap<String, u64>;

impl StatementCounts {
    /// Counts every statement `db` (this handle on the pool, not its clones made before) runs as `path`.
    pub fn watch(self: &Arc<Self>, db: &mut DatabaseConnection, path: &'static str) {
        let counts = self.clone();
        db.set_metric_callback(move |info| counts.add(path, &info.statement.sql));
    }

    pub fn add(&self, path: &'static str, sql: &str) {
        let (kind, table) = classify(sql);
        let Ok(mut counts) = self.0.lock() else { return };
        let tables = counts.entry((path, kind)).or_default();
        match tables.get_mut(table) {
            Some(count) => *count += 1,
            None => {
                tables.insert(table.to_owned(), 1);
            }
        }
    }

    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let name = "purser_store_statements_total";
        let _ = writeln!(
            out,
            "# HELP {name} SQL statements run, by path (writer batch or direct), kind and table.\n# TYPE {name} counter"
        );
        let Ok(counts) = self.0.lock() else { return };
        for ((path, kind), tables) in counts.iter() {
            for (table, count) in tables {
                let _ = writeln!(out, "{name}{{path=\"{path}\",kind=\"{kind}\",table=\"{table}\"}} {count}");
            }
        }
    }
}

const KINDS: [&str; 10] =
    ["select", "insert", "update", "delete", "with", "begin", "commit", "rollback", "savepoint", "release"];

/// The statement's verb (`other` when it is none of `KINDS`) and the first table it names (`other` when there is
/// none), as written in the statement, without quotes.
fn classify(sql: &str) -> (&'static str, &str) {
    let mut words = sql.split_whitespace().take(40);
    let first = words.next().unwrap_or_default();
    let kind = KINDS.iter().find(|k| k.eq_ignore_ascii_case(first)).copied().unwrap_or("other");
    let table = match kind {
        "update" => words.next(),
        "insert" => words.skip_while(|w| !w.eq_ignore_ascii_case("into")).nth(1),
        _ => words.skip_while(|w| !w.eq_ignore_ascii_case("from")).nth(1),
    };
    let table = table
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '`' || c == '(' || c == ','))
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or("other");
    (kind, table)
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn statements_are_named_by_verb_and_table() {
        let insert = r#"INSERT INTO "purchase_events" ("id", "purchase_id") VALUES ($1, $2)"#;
        assert_eq!(classify(insert), ("insert", "purchase_events"));
        let update = r#"UPDATE "purchases" SET "state" = $1 WHERE "id" = $2"#;
        assert_eq!(classify(update), ("update", "purchases"));
        let select = r#"SELECT "purchases"."id" FROM "purchases" WHERE "purchases"."id" = $1 LIMIT $2"#;
        assert_eq!(classify(select), ("select", "purchases"));
        assert_eq!(classify("SELECT 1"), ("select", "other"));
        assert_eq!(classify("PRAGMA compile_options"), ("other", "other"));
    }
}
