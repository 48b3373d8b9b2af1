//! Tests of [`Scanner`]: statements split, classified and their rows counted, whatever the
//! pieces the dump arrives in.

use super::*;

/// Statements as (class, text), and rows per table, feeding `dump` in pieces of `chunk`.
fn split(dump: &str, chunk: usize) -> (Vec<(Statement, String)>, BTreeMap<String, u64>) {
    let mut parts: Vec<(Statement, Vec<u8>)> = Vec::new();
    let mut out = |class: &Statement, bytes: &[u8]| {
        match parts.last_mut() {
            Some((c, b)) if c == class => b.extend_from_slice(bytes),
            _ => parts.push((class.clone(), bytes.to_vec())),
        }
        Ok(())
    };
    let mut s = Scanner::new();
    for piece in dump.as_bytes().chunks(chunk) {
        s.scan(piece, &mut out).unwrap();
    }
    let rows = s.finish(&mut out).unwrap();
    let joined: Vec<u8> = parts.iter().flat_map(|(_, b)| b.clone()).collect();
    assert_eq!(joined, dump.as_bytes(), "every byte is handed on, in order");
    (
        parts
            .into_iter()
            .map(|(c, b)| (c, String::from_utf8(b).unwrap()))
            .collect(),
        rows,
    )
}

/// A dump as mariadb-dump 10.11 writes it, with the awkward cases: quotes, escapes and
/// parentheses inside values, a name with a backtick and a semicolon, a trigger whose body
/// holds an INSERT and a `*/`, a procedure with INSERTs under `DELIMITER ;;`, a view's
/// stand-in, an event, a sequence, a table without rows.
const DUMP: &str = r#"/*M!999999\- enable the sandbox mode */ 
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
/*!40101 SET NAMES utf8mb4 */;

--
-- Sequence structure for `seq1`
--

DROP SEQUENCE IF EXISTS `seq1`;
CREATE SEQUENCE `seq1` start with 1 minvalue 1 maxvalue 9223372036854775806 increment by 1 cache 1000 nocycle ENGINE=InnoDB;
DO SETVAL(`seq1`, 1, 0);
DROP TABLE IF EXISTS `customers`;
CREATE TABLE `customers` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `note` text DEFAULT NULL COMMENT 'values (1)',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
LOCK TABLES `customers` WRITE;
/*!40000 ALTER TABLE `customers` DISABLE KEYS */;
INSERT INTO `customers` VALUES
(1,'it\'s (a) test; with ),( stuff'),
(2,NULL),
(3,'C\\'),(4,'line\nbreak -- not a comment /* nor this */ # nor this');
INSERT INTO `customers` VALUES (5,'x');
/*!40000 ALTER TABLE `customers` ENABLE KEYS */;
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`127.0.0.1`*/ /*!50003 TRIGGER customers_ai AFTER INSERT ON customers FOR EACH ROW
BEGIN
INSERT INTO audit(msg) VALUES (CONCAT('insert ', NEW.id, ' */ ;'));
END 
*/;;
DELIMITER ;
CREATE TABLE `empty_t` (`id` int);
DROP TABLE IF EXISTS `rich`;
/*!50001 DROP VIEW IF EXISTS `rich`*/;
/*!50001 CREATE VIEW `rich` AS SELECT
 NULL AS `id` */;
CREATE TABLE `we;ird ``name` (`id` int);
INSERT INTO `we;ird ``name` VALUES (1),(2);
/*!50106 DROP EVENT IF EXISTS `nightly` */;
DELIMITER ;;
/*!50106 CREATE*/ /*!50117 DEFINER=`root`@`127.0.0.1`*/ /*!50106 EVENT `nightly` ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit WHERE at < NOW() - INTERVAL 30 DAY 
*/ ;;
DELIMITER ;
/*!50003 DROP PROCEDURE IF EXISTS `add_customer` */;
delimiter ;;
CREATE DEFINER=`root`@`127.0.0.1` PROCEDURE `add_customer`(IN n VARCHAR(100))
BEGIN
INSERT INTO customers(note) VALUES (n), (n);
END
;;
DELIMITER ;
/*!50001 CREATE ALGORITHM=UNDEFINED */
/*!50013 DEFINER=`root`@`127.0.0.1` SQL SECURITY DEFINER */
/*!50001 VIEW `rich` AS select `customers`.`id` AS `id` from `customers` */;
/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;

-- Dump completed
"#;

#[test]
fn rows_are_counted_per_table_whatever_the_chunking() {
    for chunk in [1, 2, 3, 7, 64, 4096] {
        let (_, rows) = split(DUMP, chunk);
        let expected: BTreeMap<String, u64> = [
            ("customers".to_owned(), 5),
            ("empty_t".to_owned(), 0),
            ("we;ird `name".to_owned(), 2),
        ]
        .into_iter()
        .collect();
        assert_eq!(rows, expected, "chunk {chunk}");
    }
}

#[test]
fn statements_are_classified() {
    let (parts, _) = split(DUMP, 5);
    let find = |needle: &str| {
        parts
            .iter()
            .find(|(_, text)| text.contains(needle))
            .map(|(c, _)| c.clone())
            .unwrap_or_else(|| panic!("no statement with {needle:?}: {parts:#?}"))
    };
    let table = |t: &str| Statement::Table(t.to_owned());
    assert_eq!(find("CREATE SEQUENCE"), table("seq1"));
    assert_eq!(find("DO SETVAL"), table("seq1"));
    assert_eq!(find("CREATE TABLE `customers`"), table("customers"));
    assert_eq!(find("LOCK TABLES `customers`"), table("customers"));
    assert_eq!(find("DISABLE KEYS"), table("customers"));
    assert_eq!(find("(5,'x')"), Statement::Rows("customers".into()));
    assert_eq!(find("TRIGGER customers_ai"), Statement::Object);
    assert_eq!(find("DROP TABLE IF EXISTS `rich`"), table("rich"));
    assert_eq!(find("CREATE VIEW `rich`"), Statement::Object);
    assert_eq!(find("VIEW `rich` AS select"), Statement::Object);
    assert_eq!(find("EVENT `nightly` ON"), Statement::Event);
    assert_eq!(find("DROP EVENT"), Statement::Event);
    assert_eq!(find("PROCEDURE `add_customer`("), Statement::Object);
    assert_eq!(
        find("VALUES (1),(2)"),
        Statement::Rows("we;ird `name".into())
    );
    assert_eq!(find("SET SQL_MODE=@OLD"), Statement::Session);
    assert_eq!(find("Dump completed"), Statement::Session);
    assert_eq!(find("UNLOCK TABLES"), Statement::Session);
}

#[test]
fn delimiter_lines_change_the_delimiter() {
    let (parts, rows) = split(
        "DELIMITER $$\nCREATE TABLE t (a int)$$\nINSERT INTO t VALUES (1);(2)$$\nDELIMITER ;\nINSERT INTO t VALUES (3);\n",
        3,
    );
    assert_eq!(rows["t"], 3, "{parts:#?}");
    assert_eq!(
        parts
            .iter()
            .filter(|(c, _)| *c == Statement::Session)
            .count(),
        3,
        "{parts:#?}"
    );
}

/// Rows past the first 512 bytes of a statement take the fast paths; they must count the
/// same.
#[test]
fn long_statements_count_every_row() {
    let mut dump = String::from("CREATE TABLE `t` (a int, b text, c blob);\n");
    for batch in 0..3 {
        dump.push_str("INSERT INTO `t` VALUES ");
        let rows: Vec<String> = (0..700)
            .map(|i| {
                format!(
                    "({i},'it\\'s {batch} (x),; \\\\',0x{:04X}28293B,(NULL)) /* ), */ -- (\n",
                    i * 7
                )
            })
            .collect();
        dump.push_str(&rows.join(","));
        dump.push_str(";\n# ( comment\n");
    }
    dump.push_str("INSERT INTO `t` VALUES (1,'tail',NULL);\n");
    for chunk in [1, 5, 100, 1 << 16] {
        let (_, rows) = split(&dump, chunk);
        assert_eq!(rows["t"], 2101, "chunk {chunk}");
    }
}

#[test]
fn a_column_list_is_not_a_row() {
    let (_, rows) = split(
        "CREATE TABLE `t` (a int, b int);\nINSERT IGNORE INTO `t` (`a`, `values`) VALUES (1,2),(3,(4));\nREPLACE INTO db.`t` VALUE (5,6);\n",
        4,
    );
    assert_eq!(rows["t"], 3);
}
