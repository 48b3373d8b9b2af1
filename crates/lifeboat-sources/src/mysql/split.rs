//! [`DumpSplit`]: a dump's tables apart from its views, triggers, routines and events.

use std::{
    collections::BTreeMap,
    io::{self, Write},
};

use super::dump;

/// Where [`DumpSplit`] sends each statement of a dump.
///
/// The tables (structure and rows) go to the `tables` writer, to be loaded into a database
/// that is checked and then renamed into place. Views, triggers, routines and events cannot
/// follow a table into another database (`RENAME TABLE` refuses tables with triggers, and
/// views are bound to their database), so they are kept apart (`objects`, `events`) and
/// created where the tables end up. `SET` and `DELIMITER` statements go everywhere, so each
/// part runs on its own.
pub struct DumpSplit<'a> {
    scanner: Option<dump::Scanner>,
    tables: Option<&'a mut dyn Write>,
    /// Only these tables, and no views, triggers, routines or events.
    only: Option<Vec<String>>,
    pub objects: Vec<u8>,
    pub events: Vec<u8>,
    rows: BTreeMap<String, u64>,
}

impl std::fmt::Debug for DumpSplit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DumpSplit")
            .field("only", &self.only)
            .finish_non_exhaustive()
    }
}

impl<'a> DumpSplit<'a> {
    /// A split that keeps only the objects (no tables writer) and, with `only`, only those
    /// tables and no objects.
    #[must_use]
    pub fn new(only: Option<Vec<String>>) -> Self {
        Self {
            scanner: Some(dump::Scanner::new()),
            tables: None,
            only,
            objects: Vec::new(),
            events: Vec::new(),
            rows: BTreeMap::new(),
        }
    }

    /// Tables and rows go to `tables`.
    #[must_use]
    pub fn with_tables(mut self, tables: &'a mut dyn Write) -> Self {
        self.tables = Some(tables);
        self
    }

    /// Rows per table the dump held (all tables, selected or not).
    #[must_use]
    pub fn rows(&self) -> &BTreeMap<String, u64> {
        &self.rows
    }

    /// Hands on what follows the last statement.
    ///
    /// # Errors
    /// When the tables writer fails.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some(scanner) = self.scanner.take() {
            let mut sink = Sink {
                tables: self.tables.as_deref_mut(),
                only: self.only.as_deref(),
                objects: &mut self.objects,
                events: &mut self.events,
            };
            self.rows = scanner.finish(&mut |c, b| sink.put(c, b))?;
        }
        if let Some(t) = self.tables.as_deref_mut() {
            t.flush()?;
        }
        Ok(())
    }
}

struct Sink<'s, 'a> {
    tables: Option<&'s mut (dyn Write + 'a)>,
    only: Option<&'s [String]>,
    objects: &'s mut Vec<u8>,
    events: &'s mut Vec<u8>,
}

impl Sink<'_, '_> {
    fn put(&mut self, class: &dump::Statement, bytes: &[u8]) -> io::Result<()> {
        use dump::Statement as S;
        let selected = |t: &str| self.only.is_none_or(|only| only.iter().any(|o| o == t));
        let (to_tables, to_objects, to_events) = match class {
            S::Table(t) | S::Rows(t) => (selected(t), false, false),
            S::Object => (false, self.only.is_none(), false),
            S::Event => (false, false, self.only.is_none()),
            S::Session => (true, self.only.is_none(), self.only.is_none()),
        };
        if to_tables && let Some(t) = self.tables.as_deref_mut() {
            t.write_all(bytes)?;
        }
        if to_objects {
            self.objects.extend_from_slice(bytes);
        }
        if to_events {
            self.events.extend_from_slice(bytes);
        }
        Ok(())
    }
}

impl Write for DumpSplit<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Some(scanner) = self.scanner.as_mut() else {
            return Err(io::Error::other("write after finish"));
        };
        let mut sink = Sink {
            tables: self.tables.as_deref_mut(),
            only: self.only.as_deref(),
            objects: &mut self.objects,
            events: &mut self.events,
        };
        scanner.scan(buf, &mut |c, b| sink.put(c, b))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.tables.as_deref_mut() {
            Some(t) => t.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_routes_tables_objects_and_events() {
        let dump = b"/*!40101 SET NAMES utf8mb4 */;\nCREATE TABLE `a` (x int);\nINSERT INTO `a` VALUES (1),(2);\nCREATE TABLE `b` (x int);\nINSERT INTO `b` VALUES (3);\nDELIMITER ;;\nCREATE PROCEDURE p() BEGIN INSERT INTO a VALUES (9); END ;;\nDELIMITER ;\n/*!50106 CREATE*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO DELETE FROM a */;\n";
        let mut tables = Vec::new();
        let (objects, events, rows) = {
            let mut split = DumpSplit::new(None).with_tables(&mut tables);
            for piece in dump.chunks(7) {
                split.write_all(piece).unwrap();
            }
            split.finish().unwrap();
            (
                split.objects.clone(),
                split.events.clone(),
                split.rows().clone(),
            )
        };
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        let (tables, objects, events) = (text(&tables), text(&objects), text(&events));
        assert!(
            tables.contains("INSERT INTO `b`")
                && !tables.contains("PROCEDURE")
                && !tables.contains("EVENT"),
            "{tables}"
        );
        assert!(
            objects.contains("PROCEDURE p()")
                && objects.contains("DELIMITER ;;")
                && !objects.contains("CREATE TABLE"),
            "{objects}"
        );
        assert!(
            events.contains("EVENT `e`") && !events.contains("PROCEDURE"),
            "{events}"
        );
        for part in [&tables, &objects, &events] {
            assert!(part.contains("SET NAMES utf8mb4"), "{part}");
        }
        assert_eq!(rows["a"], 2);

        let mut only_b = Vec::new();
        let mut split = DumpSplit::new(Some(vec!["b".into()])).with_tables(&mut only_b);
        split.write_all(dump).unwrap();
        split.finish().unwrap();
        assert!(split.objects.is_empty() && split.events.is_empty());
        let only_b = text(&only_b);
        assert!(
            only_b.contains("INSERT INTO `b`") && !only_b.contains("`a`"),
            "{only_b}"
        );
    }
}
