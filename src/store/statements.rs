//! Statements the store runs, by path (`writer`: inside a group-commit batch; `direct`: outside it, where each write
//! is a transaction of its own), kind and table, counted from SeaORM's metric callback. `/metrics` shows them and
//! `purser bench` divides them by the purchases made.
use crate::prometheus::CounterFamily;
use sea_orm::DatabaseConnection;
use std::sync::Arc;

#[derive(Default)]
pub struct StatementCounts(CounterFamily);

impl StatementCounts {
    /// Counts every statement `db` (this handle on the pool, not its clones made before) runs as `path`.
    pub fn watch(self: &Arc<Self>, db: &mut DatabaseConnection, path: &'static str) {
        let counts = self.clone();
        db.set_metric_callback(move |info| {
            let (kind, table) = classify(&info.statement.sql);
            counts.0.add(format!("path=\"{path}\",kind=\"{kind}\",table=\"{table}\""));
        });
    }

    pub fn render(&self, out: &mut String) {
        let help = "SQL statements run, by path (writer batch or direct), kind and table.";
        self.0.render(out, "purser_store_statements_total", help);
    }
}

/// The statement's verb and the first table it names, both lower case; `other` when there is none.
fn classify(sql: &str) -> (String, String) {
    let words: Vec<&str> = sql.split_whitespace().take(40).collect();
    let kind = words.first().map_or("other".to_owned(), |w| w.to_ascii_lowercase());
    let after = |keyword: &str| words.iter().position(|w| w.eq_ignore_ascii_case(keyword)).map(|i| i + 1);
    let at = match kind.as_str() {
        "insert" => after("into"),
        "update" => Some(1),
        _ => after("from"),
    };
    let table = at
        .and_then(|i| words.get(i))
        .map(|w| w.trim_matches(|c: char| c == '"' || c == '`' || c == '(' || c == ',').to_ascii_lowercase())
        .filter(|t| t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !t.is_empty())
        .unwrap_or_else(|| "other".to_owned());
    (kind, table)
}

#[cfg(test)]
mod tests {
    use super::classify;

    #[test]
    fn statements_are_named_by_verb_and_table() {
        let insert = r#"INSERT INTO "purchase_events" ("id", "purchase_id") VALUES ($1, $2)"#;
        assert_eq!(classify(insert), ("insert".into(), "purchase_events".into()));
        let update = r#"UPDATE "purchases" SET "state" = $1 WHERE "id" = $2"#;
        assert_eq!(classify(update), ("update".into(), "purchases".into()));
        let select = r#"SELECT "purchases"."id" FROM "purchases" WHERE "purchases"."id" = $1 LIMIT $2"#;
        assert_eq!(classify(select), ("select".into(), "purchases".into()));
        assert_eq!(classify("SELECT 1"), ("select".into(), "other".into()));
    }
}
